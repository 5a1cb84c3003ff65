#!/usr/bin/env python3
"""Write a single-layer OCI image archive from a root filesystem folder (no registry, no Docker).

usage: oci-image.py ROOTFS_DIR IMAGE_REF OUT.tar [ENTRYPOINT...]
then:  ctr --address <containerd.sock> --namespace k8s.io images import OUT.tar

IMAGE_REF must be fully qualified as the CRI sees it (e.g. mooc.local/probe:dev, or
docker.io/library/x:tag); dev/components/kubernetes.sh normalises short names before calling this.
The layer is reproducible: files are owned by root, timestamps are zero, entries are sorted.
A static binary (plus /etc/passwd if it looks users up) is enough for a rootfs.
"""
import hashlib
import io
import json
import os
import sys
import tarfile


def layer_tar(rootfs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = os.path.join(dirpath, name)
                info = t.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(path, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    return buf.getvalue()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rootfs, ref, out, entrypoint = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    sha = lambda b: hashlib.sha256(b).hexdigest()
    layer = layer_tar(rootfs)
    cfg = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "WorkingDir": "/"}
    if entrypoint:
        cfg["Entrypoint"] = entrypoint
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": cfg,
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]},
                         "history": [{"created_by": "dev/k8s/oci-image.py"}]},
                        sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + sha(layer), "size": len(layer)}]}, sort_keys=True).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + sha(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]
                        if "@" not in ref else ref, "io.containerd.image.name": ref}}]},
        sort_keys=True).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (layer, config, manifest):
            add("blobs/sha256/" + sha(blob), blob)


if __name__ == "__main__":
    main()
