{
  description = "my-service: a Rust service as static multi-arch images";

  # lookout's build library pins nixpkgs, crane and fenix; to use your own nixpkgs, add
  # `inputs.lookout.inputs.nixpkgs.follows = "nixpkgs";`.
  inputs.lookout.url = "github:lookout-dev/lookout";

  outputs =
    { self, lookout }:
    lookout.lib.eachSystem (
      system:
      lookout.lib.mkRustService {
        inherit system;
        src = ./.;
        name = "my-service";
        ports = [ 8080 ];
        revision = self.rev or "dirty";
      }
    );
}
