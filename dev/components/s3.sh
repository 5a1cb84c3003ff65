# An S3-compatible store: s3s-fs from crates.io (verifies SigV4; objects are files under its root).
S3S_HOME=$MOOC_CACHE/s3s-fs-$S3S_FS_VERSION
S3_DATA=$MOOC_RUN/s3

s3_install() {
  [ -x "$S3S_HOME/bin/s3s-fs" ] && return 0
  log "building s3s-fs $S3S_FS_VERSION from crates.io"
  cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$S3S_HOME"
}

s3_endpoint() { echo "http://127.0.0.1:$MOOC_S3_PORT"; }

# A signed request with curl's SigV4 support: dev/ needs no AWS CLI.
s3_request() {
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    --user "$(credential s3-access-key):$(credential s3-secret-key)" "$@"
}

s3_start() {
  rm -rf "$S3_DATA" && mkdir -p "$S3_DATA"
  # s3s-fs takes its keys only as flags, so they show in `ps` on this machine: fine for throwaway
  # dev credentials, which is all they are.
  start_daemon s3 "$S3S_HOME/bin/s3s-fs" --host 127.0.0.1 --port "$MOOC_S3_PORT" \
    --access-key "$(credential s3-access-key)" --secret-key "$(credential s3-secret-key)" "$S3_DATA"
  wait_until "S3 (s3s-fs)" 30 port_open "$MOOC_S3_PORT" || die "s3s-fs did not start; see $MOOC_RUN/s3.log"
  s3_request -X PUT "$(s3_endpoint)/$MOOC_S3_BUCKET" >/dev/null || die "creating bucket $MOOC_S3_BUCKET failed"
}

s3_ready() { s3_request -I "$(s3_endpoint)/$MOOC_S3_BUCKET" >/dev/null; }

s3_env() {
  cat <<ENV
export S3_ENDPOINT=$(s3_endpoint)
export S3_BUCKET=$MOOC_S3_BUCKET
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$(credential s3-access-key)
export AWS_SECRET_ACCESS_KEY=$(credential s3-secret-key)
ENV
}
