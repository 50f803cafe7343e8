#!/usr/bin/env bash
# Makes a CA and a server certificate (EC P-256) for otpgate's MQTT/TLS listener.
#
#   certs/make-certs.sh OUT_DIR HOSTNAME [HOSTNAME...]
#
# OUT_DIR gets ca.pem, ca-key.pem, server.pem (server certificate followed by
# the CA: the chain the broker presents) and server-key.pem. Every HOSTNAME
# (DNS name or IP address) goes into the server certificate's SANs.
#
# Phones pin the CA's fingerprint. Run it again on the same OUT_DIR and the CA
# there is kept: only the server certificate is re-issued, and provisioned
# phones keep working.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 OUT_DIR HOSTNAME [HOSTNAME...]" >&2
  exit 2
fi
out=$1
shift

ca_days=3650
server_days=825 # the longest server certificate every TLS client still accepts

# Keys are created unreadable to others from the first byte; certificates are chmod'ed 644 below.
umask 077
mkdir -p "$out"
work=$(mktemp -d "$out/.make-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# SAN entries: IP for addresses (IPv6 ones contain ':'), DNS for names.
sans="" dns=0 ip=0
for host in "$@"; do
  host=${host#[}
  host=${host%]}
  if [[ $host =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $host == *:* ]]; then
    ip=$((ip + 1))
    sans+="IP.$ip = $host"$'\n'
  elif [[ $host =~ ^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$ ]]; then
    dns=$((dns + 1))
    sans+="DNS.$dns = $host"$'\n'
  else
    echo "not a hostname or IP address: $host" >&2
    exit 2
  fi
done

# Our own config, so the result does not depend on the system's openssl.cnf defaults.
cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = otpgate
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = @sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[sans]
$sans
EOF

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
# 128 random bits: serials must be unique per CA and unpredictable.
new_serial() { echo "0x$(openssl rand -hex 16)"; }

if [[ -f $out/ca.pem && -f $out/ca-key.pem ]]; then
  echo "Keeping the CA already in $out" >&2
elif [[ -e $out/ca.pem || -e $out/ca-key.pem ]]; then
  echo "$out holds only one of ca.pem and ca-key.pem: restore the other, or remove both to make a new CA (and re-provision the phones)" >&2
  exit 1
else
  new_key "$work/ca-key.pem"
  # The random suffix tells this CA from others in a trust list.
  openssl req -config "$work/openssl.cnf" -new -x509 -sha256 -days "$ca_days" \
    -key "$work/ca-key.pem" -subj "/CN=otpgate CA $(openssl rand -hex 4)" \
    -extensions ca_ext -set_serial "$(new_serial)" -out "$work/ca.pem"
  chmod 644 "$work/ca.pem"
  mv "$work/ca-key.pem" "$out/ca-key.pem"
  mv "$work/ca.pem" "$out/ca.pem"
fi

new_key "$work/server-key.pem"
openssl req -config "$work/openssl.cnf" -new -key "$work/server-key.pem" -subj "/CN=otpgate broker" -out "$work/server.csr"
# openssl 3 chatters on stderr even when it succeeds: show it only on failure.
if ! log=$(openssl x509 -req -sha256 -days "$server_days" -in "$work/server.csr" \
  -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -set_serial "$(new_serial)" \
  -extfile "$work/openssl.cnf" -extensions server_ext -out "$work/leaf.pem" 2>&1); then
  echo "$log" >&2
  exit 1
fi
cat "$work/leaf.pem" "$out/ca.pem" >"$work/server.pem"
chmod 644 "$work/server.pem"
mv "$work/server-key.pem" "$out/server-key.pem"
mv "$work/server.pem" "$out/server.pem"

fingerprint=$(openssl x509 -in "$out/ca.pem" -noout -fingerprint -sha256)
echo "Wrote $out/ca.pem, ca-key.pem, server.pem (server certificate + CA) and server-key.pem"
echo "CA SHA-256 fingerprint (phones pin this): ${fingerprint#*=}"
