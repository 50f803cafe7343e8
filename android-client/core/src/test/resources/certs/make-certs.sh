#!/usr/bin/env bash
# Usage: make-certs.sh OUTPUT-DIR
#
# Generates the test certificates and keys of PinnedTrustManagerTest,
# PinnedTlsHandshakeTest, FingerprintsTest, PinnedCaTest and PhoneLinkLiveTest into OUTPUT-DIR (created if
# missing). They are made afresh at test time, into a temporary folder, by
# scripts/jvm-test.sh and the Gradle test task, and passed to the tests as
# -Dotpgate.certs=OUTPUT-DIR: no private key is ever part of the repository.
# EC P-256 like the gateway's dev CA (broker/tls/dev-certificates.ts), valid
# for 100 years from now; the tests take their clock from the certificates
# (TestCerts.validNow) and move it to test expired or not-yet-valid chains.
set -euo pipefail
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 OUTPUT-DIR" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found (Debian: apt-get install openssl)" >&2; exit 2; }
mkdir -p "$1"
cd "$1"
DAYS=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ext() { printf '%s\n' "$@" > ext.cnf; }

# ca: the pinned CA. rogue-ca: another key with the SAME name, as a forger would make it.
for name in ca rogue-ca; do
  key "$name-key.pem"
  openssl req -x509 -new -key "$name-key.pem" -subj "/O=otpgate tests/CN=otpgate test CA" -days $DAYS -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$name.pem"
done

# intermediate: a CA below ca.
key intermediate-key.pem
openssl req -new -key intermediate-key.pem -subj "/O=otpgate tests/CN=otpgate test intermediate" -out req.csr
ext "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign"
openssl x509 -req -in req.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days $DAYS -sha256 -extfile ext.cnf -out intermediate.pem 2>/dev/null

# leaf NAME ISSUER SUBJECT-CN EXTENSION-LINES...
leaf() {
  local name=$1 issuer=$2 cn=$3; shift 3
  key "$name-key.pem"
  openssl req -new -key "$name-key.pem" -subj "/O=otpgate tests/CN=$cn" -out req.csr
  ext "$@"
  openssl x509 -req -in req.csr -CA "$issuer.pem" -CAkey "$issuer-key.pem" -CAcreateserial -days $DAYS -sha256 -extfile ext.cnf -out "$name.pem" 2>/dev/null
}
SERVER=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth")
leaf server ca localhost "${SERVER[@]}" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
leaf rogue-server rogue-ca localhost "${SERVER[@]}" "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf via-intermediate intermediate localhost "${SERVER[@]}" "subjectAltName=DNS:localhost"
leaf client-only ca localhost "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" "subjectAltName=DNS:localhost"
leaf wildcard ca wildcard "${SERVER[@]}" "subjectAltName=DNS:*.example.test"
leaf cn-only ca cn-only.example.test "${SERVER[@]}"
# signed-by-leaf: "issued" by server, which is no CA.
leaf signed-by-leaf server localhost "${SERVER[@]}" "subjectAltName=DNS:localhost"

for name in ca rogue-ca intermediate; do
  openssl x509 -in "$name.pem" -noout -fingerprint -sha256 | sed 's/.*=//' > "$name.fingerprint"
done
# Only the keys the TLS handshake test serves with are kept.
find . -name '*-key.pem' ! -name server-key.pem ! -name rogue-server-key.pem ! -name via-intermediate-key.pem ! -name wildcard-key.pem -delete
rm -f req.csr ext.cnf ./*.srl
