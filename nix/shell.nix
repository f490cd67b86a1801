# `nix develop`: the build's fenix toolchain (plus rust-analyzer and the standard
# library's sources) and the tools the project's commands use.
{
  mkShell,
  toolchain,
  cargo-auditable,
  cargo-deny,
  cargo-nextest,
  jq,
  kubectl,
  kustomize,
  nixfmt,
  skopeo,
  taplo,
}:
mkShell {
  packages = [
    toolchain
    cargo-auditable
    cargo-deny
    cargo-nextest
    jq
    kubectl
    kustomize
    nixfmt
    skopeo
    taplo
  ];
}
