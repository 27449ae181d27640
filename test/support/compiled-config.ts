// What the operator and attack tests read back from the apiserver: an object's condition, and the
// relay config the operator compiled into a MailRelay's ConfigMap, parsed as the relay parses it
// (relay/contract/config-encoding.ts: gzipped binaryData or plain data).
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any -- the tests walk the apiserver's JSON */
import type { Condition } from "../../operator/runtime/conditions.js";
import { R, type KubeClient, type KubeObject } from "../../operator/runtime/kube.js";
import { RelayConfig } from "../../relay/contract/config.js";
import { configMapJson } from "../../relay/contract/config-encoding.js";
import { waitFor } from "./process.js";

/** An object as the tests read it from the apiserver. */
export type Obj = KubeObject & { spec?: any; status?: any; data?: Record<string, string> };

/** The condition `type` of `o`'s status, if any. */
export const conditionOf = (o: Obj | undefined, type: string): Condition | undefined =>
  (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/** A sealpost.dev/v1alpha1 object of `kind` named `name` in `namespace`. */
export const sealpostObject = (
  namespace: string,
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  labels?: Record<string, string>,
): Obj => ({
  apiVersion: "sealpost.dev/v1alpha1",
  kind,
  metadata: { name, namespace, ...(labels ? { labels } : {}) },
  spec,
});

/**
 * Readers of namespace `namespace` through `client()` (a function: the tests make their client in
 * `before`): `get` an object, the `config` compiled for MailRelay `relay` (default edge), and
 * `configWith`, which waits until that config satisfies `ok`.
 */
export function compiledConfigs(client: () => KubeClient, namespace: string) {
  const get = (r: (typeof R)[keyof typeof R], name: string) => client().find<Obj>(r, namespace, name);
  const config = async (relay = "edge"): Promise<RelayConfig | undefined> => {
    const cm = await get(R.ConfigMap, `${relay}-config`);
    const json = cm ? configMapJson(cm) : undefined;
    return json ? RelayConfig.parse(JSON.parse(json)) : undefined;
  };
  const configWith = (what: string, ok: (c: RelayConfig) => boolean, relay = "edge") =>
    waitFor(what, async () => {
      const c = await config(relay);
      return c && ok(c) ? c : undefined;
    });
  return { get, config, configWith };
}
