# shellcheck shell=bash
# Shared by bench/run.sh, bench/profile.sh, bench/size.sh, tests/artifacts/run.sh and link/startup.sh
# (sourced, not run).

# bench_layer ROOT BINARY TAR: the image's files as bench/run.sh measures them (bin/lookout,
# the CA bundle, passwd and group, fixed owner and mtimes) built under ROOT, written as one
# tar layer to TAR and gzipped (-n -6, as registries store layers) to TAR.gz.
bench_layer() {
  local root=$1 binary=$2 tar=$3
  mkdir -p "$root/bin" "$root/etc/ssl/certs"
  install -m 0755 "$binary" "$root/bin/lookout"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/empty:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  find "$root" -type d -exec chmod 0755 {} +
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 --format=gnu -C "$root" -cf "$tar" bin etc
  gzip -n -6 -c "$tar" >"$tar.gz"
}

# bench_tls DIR: the probe target's test PKI in DIR: ca.pem, and a P-256 leaf.pem and
# leaf.key for localhost and 127.0.0.1 signed by it.
bench_tls() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=lookout bench CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$dir/leaf.key" -out "$dir/leaf.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/san.ext" -out "$dir/leaf.pem" 2>/dev/null
}
