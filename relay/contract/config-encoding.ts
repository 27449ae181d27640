// How config.json travels from the operator to the relay: compact JSON (the one schema, config.ts),
// gzip-compressed into ONE ConfigMap key (`binaryData["config.json.gz"]`), mounted as the file
// config.json.gz. Why one compressed object and not shards over several ConfigMaps: kubelet swaps a
// projected volume's `..data` symlink atomically, so one ConfigMap is one atomic generation; several
// ConfigMaps are updated by the apiserver one by one and kubelet may project a mix of old and new
// shards, which the relay would have to detect and wait out (and a half-new policy set is exactly the
// state a relay must never run). 10,000 realistic policies (test/support/realistic-policies.ts) are
// 3.6 MB as indented JSON, 2.2 MB compact and 0.17 MB gzipped (docs/benchmarks.md): far inside a
// ConfigMap's 1 MiB and etcd's 1.5 MiB request limit.
// The relay hashes the decompressed JSON (what /status reports and the operator compares), so the
// compression is invisible to Enforced. The limits bound both sides: the operator refuses a config
// whose compressed form does not fit a ConfigMap, or whose JSON the relay would not inflate; the relay
// refuses to inflate more than MAX_CONFIG_JSON_BYTES (a corrupt or hostile file is no memory bomb).
import { promisify } from "node:util";
import { gunzipSync, gzip, gzipSync } from "node:zlib";
import { errorMessage, fail, ok, type Result } from "./failure.js";

/** The config as the operator writes it (ConfigMap binaryData key, and the mounted file's name). */
export const CONFIG_GZ_FILE = "config.json.gz";

/**
 * The compressed config above this is not applied: a ConfigMap holds at most 1 MiB of data and
 * binaryData together (the apiserver's check), and its metadata and a server-side apply's
 * managedFields come on top (etcd's request limit is 1.5 MiB).
 */
export const MAX_CONFIG_STORED_BYTES = 900 * 1024;

/** The relay inflates at most this much config.json; the operator never writes more. */
export const MAX_CONFIG_JSON_BYTES = 64 * 1024 * 1024;

/** The JSON text written for a config: compact (indentation would be a third of its size). */
export function configJsonText(config: unknown): string {
  return JSON.stringify(config);
}

/**
 * zlib's level for the config: 6 (its default), not 9: for 10,000 policies 165 KB instead of 153 KB
 * (both far inside MAX_CONFIG_STORED_BYTES) for 40% of the CPU (21 ms instead of 53 ms on this
 * project's 2-core bench machine, per compile: docs/benchmarks.md, bench/operator/compile-cost.ts).
 */
const LEVEL = 6;

/** config.json compressed as the ConfigMap holds it (deterministic for one input and zlib). */
export function encodeConfig(json: string): Buffer {
  return gzipSync(Buffer.from(json, "utf8"), { level: LEVEL });
}

const gzipAsync = promisify(gzip);

/**
 * encodeConfig on libuv's thread pool: the same bytes, without holding the operator's event loop
 * while 2 MB of JSON (10,000 policies) are compressed.
 */
export function encodeConfigAsync(json: string): Promise<Buffer> {
  return gzipAsync(Buffer.from(json, "utf8"), { level: LEVEL });
}

/** The JSON bytes of a config.json.gz; a failure for a corrupt file or one over MAX_CONFIG_JSON_BYTES. */
export function decodeConfig(gz: Buffer, maxBytes = MAX_CONFIG_JSON_BYTES): Result<Buffer> {
  try {
    return ok(gunzipSync(gz, { maxOutputLength: maxBytes }));
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
    return fail(
      "CONFIG_INVALID",
      false,
      `${CONFIG_GZ_FILE}: ${tooLarge ? `inflates to more than ${maxBytes} bytes` : errorMessage(e)}`,
    );
  }
}

/** The config.json text a relay ConfigMap holds (binaryData, or an older operator's data), if any. */
export function configMapJson(cm: {
  data?: Record<string, string> | undefined;
  binaryData?: Record<string, string> | undefined;
}): string | undefined {
  const gz = cm.binaryData?.[CONFIG_GZ_FILE];
  if (gz !== undefined) {
    const r = decodeConfig(Buffer.from(gz, "base64"));
    return r.ok ? r.value.toString("utf8") : undefined;
  }
  return cm.data?.["config.json"];
}
