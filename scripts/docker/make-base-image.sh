#!/usr/bin/env bash
# Builds a minimal local base image from this machine's own `node` binary, for machines that cannot
# pull images (no registry access): node + the shared libraries `ldd` lists + busybox for /bin/sh,
# an /etc/passwd with the unprivileged user 1000 ("node", as in the official node images).
#
#   scripts/docker/make-base-image.sh [image-tag]      default tag: loom-base:local
#
# The project image is then built with --build-arg BASE_IMAGE=<tag> (see docs/docker.md).
set -euo pipefail
tag=${1:-loom-base:local}
node_bin=$(readlink -f "$(command -v node)")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,usr/bin,usr/local/bin,etc,tmp,home/node,lib64}
chmod 1777 "$root/tmp"
cp "$node_bin" "$root/usr/local/bin/node"
# The dynamic loader and every library node links against, at the same paths.
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# DNS resolution through glibc needs the nss modules (service names in the compose network).
for lib in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libnss_files.so.2 \
  /lib/x86_64-linux-gnu/libresolv.so.2; do
  [ -e "$lib" ] && { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
done

busybox=$(command -v busybox || true)
if [ -n "$busybox" ] && ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable'; then
  cp "$busybox" "$root/bin/busybox"
  for app in sh ash ls cat mkdir chown chmod cp mv rm ln env id echo sleep wget ps kill; do
    ln -s /bin/busybox "$root/bin/$app"
  done
  ln -s /bin/busybox "$root/usr/bin/env"
else
  # No static busybox: the host's dash and coreutils basics with their libraries.
  for b in /bin/sh /bin/dash /bin/ls /bin/cat /bin/mkdir /bin/chown /bin/chmod /bin/ln /usr/bin/env /usr/bin/id; do
    [ -e "$b" ] || continue
    mkdir -p "$root$(dirname "$b")"
    cp -L "$b" "$root$b"
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
fi

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
node:x:1000:
nogroup:x:65534:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
chown 1000:1000 "$root/home/node"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'CMD ["node"]' \
  - "$tag" >/dev/null
docker run --rm "$tag" node -e 'process.stdout.write(`base image ok: node ${process.version}\n`)'
