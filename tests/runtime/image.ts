/**
 * A tiny container image built locally from busybox-static (no registry): a rootfs with busybox and the applets
 * the runtime tests use, as a plain tarball (for `podman import`) or an OCI image-layout archive (for
 * `ctr image import`).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { must } from '../helpers/netns';

export const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ip', 'ping', 'cat', 'echo', 'sleep', 'httpd', 'wget', 'ls', 'hostname', 'true'];

/** rootfs/ with /bin/busybox and its applets; returns the tarball of it (layer and `podman import` input). */
export async function busyboxTarball(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'www']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'www', 'index.html'), 'hello from busybox\n');
  const tar = join(dir, 'rootfs.tar');
  await must('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tar, '.']);
  return tar;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/** An OCI image layout archive of the busybox rootfs, named `name` (containerd's import takes the name from it). */
export async function busyboxOciArchive(dir: string, name: string): Promise<string> {
  const layerTar = await busyboxTarball(dir);
  const layout = join(dir, 'oci');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (content: Buffer | string) => {
    const digest = sha256(content);
    writeFileSync(join(blobs, digest), content);
    return { digest: `sha256:${digest}`, size: Buffer.byteLength(content) };
  };
  const layer = readFileSync(layerTar);
  const layerDesc = blob(layer);
  const config = blob(
    JSON.stringify({
      architecture: GOARCH[process.arch] ?? process.arch,
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [layerDesc.digest] },
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layerDesc }],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  const archive = join(dir, 'image.tar');
  await must('tar', ['-C', layout, '-cf', archive, '.']);
  return archive;
}
