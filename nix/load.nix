# `nix run .#load`: load.sh with the build machine's image filled in. It loads into the
# user's own Docker or Podman, so neither is a runtime input: a pinned client could
# speak another API version than the daemon. The logic stays in load.sh, a plain script
# that tests/podman/run.sh runs against real engines without Nix.
{
  writeShellApplication,
  coreutils,
  gzip,
  # The image of the build machine's architecture (a dockerTools archive).
  image,
  name,
}:
writeShellApplication {
  name = "${name}-load";
  runtimeInputs = [
    coreutils
    gzip
  ];
  runtimeEnv = {
    LOAD_IMAGE = "${image}";
  };
  text = builtins.readFile ./load.sh;
  meta = {
    description = "Load ${name}'s image into the local Docker or Podman and print its name";
    mainProgram = "${name}-load";
  };
}
