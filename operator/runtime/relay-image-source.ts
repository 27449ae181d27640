// The default relay image read from the operator's own pod: the image of one of its containers (the
// chart's init container "relay-image"). Kustomize's `images:` and other image rewriters (Argo CD
// image updater, Renovate, a registry mirror's admission webhook) change container images, never a
// command-line flag, so reading the image from a container keeps the relays on the image the
// Deployment really names. The chart's admission policy reads the same container (templates/
// admissionpolicy.yaml), so both follow one rewrite. Fails closed: no pod, no container, no start.
import type { KubeClient, KubeObject } from "./kube.js";
import { R } from "./kube.js";

interface PodSpec {
  containers?: { name: string; image?: string }[];
  initContainers?: { name: string; image?: string }[];
}

/** The image of container (or init container) `name` of the pod. Pure; throws with the fix. */
export function containerImage(pod: KubeObject, name: string): string {
  const spec = (pod.spec ?? {}) as PodSpec;
  const c = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((x) => x.name === name);
  if (!c?.image)
    throw new Error(
      `--relay-image-from-container=${name}: pod ${pod.metadata.namespace}/${pod.metadata.name} has no container ${name} with an image; add it (the chart's Deployment has one) or set --relay-image instead`,
    );
  return c.image;
}

/** Reads the operator's own pod (POD_NAMESPACE/POD_NAME from the downward API) and that container's image. */
export async function relayImageFromOwnPod(
  client: KubeClient,
  namespace: string,
  podName: string | undefined,
  container: string,
): Promise<string> {
  if (!podName)
    throw new Error(
      `--relay-image-from-container=${container} needs POD_NAME (the downward API's metadata.name) to find the operator's own pod`,
    );
  let pod: KubeObject;
  try {
    pod = await client.get<KubeObject>(R.Pod, namespace, podName);
  } catch (e) {
    throw new Error(
      `--relay-image-from-container=${container}: cannot read the operator's own pod ${namespace}/${podName} (it needs get on pods in its namespace): ${(e as Error).message}`,
      { cause: e },
    );
  }
  return containerImage(pod, container);
}
