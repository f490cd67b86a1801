{
  description = "my-service: a Rust service as static multi-arch images";

  # lookout's build library pins nixpkgs, crane and fenix; to use your own nixpkgs, add
  # `inputs.lookout.inputs.nixpkgs.follows = "nixpkgs";`.
  inputs.lookout.url = "github:lookout-dev/lookout";

  outputs =
    { self, lookout }:
    lookout.lib.eachSystem (
      system:
      let
        revision = self.rev or "dirty";
      in
      lookout.lib.mkRustService {
        inherit system revision;
        src = ./.;
        name = "my-service";
        ports = [ 8080 ];
        # The build_info metric's revision label; only the final build sees it.
        packageEnv.GIT_REVISION = revision;
      }
    );
}
