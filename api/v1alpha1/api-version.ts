// The API group and version of the three kinds, written once: the objects' apiVersion, the CRDs,
// the operator's watches and the Postfix importer all read it from here.
export const GROUP = "sealpost.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
