# `nix run .#load`: the build machine's image into the local Docker or Podman (provisional;
# see nix/load.sh).
{
  writeShellApplication,
  image,
  name,
}:
writeShellApplication {
  name = "${name}-load";
  runtimeEnv.LOAD_IMAGE = "${image}";
  text = builtins.readFile ./load.sh;
  meta = {
    description = "Load ${name}'s image into the local Docker or Podman and print its name";
    mainProgram = "${name}-load";
  };
}
