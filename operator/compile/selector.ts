// Label selectors (metav1.LabelSelector) evaluated the way the apiserver does. Pure.

export interface LabelSelectorRequirement {
  key: string;
  /** In, NotIn, Exists or DoesNotExist (anything else matches nothing). */
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** An empty selector matches everything; an undefined one matches nothing. */
export function selectorMatches(
  selector: LabelSelector | undefined | null,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  // (for...in, not Object.entries: asked per selected policy per relay compile, an array per call)
  const want = selector.matchLabels;
  if (want) for (const k in want) if (Object.hasOwn(want, k) && l[k] !== want[k]) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !vals.includes(l[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && vals.includes(l[e.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** The selector as a query string (labelSelector=...), for kubectl-like messages. */
export function selectorString(selector: LabelSelector | undefined | null): string {
  if (!selector) return "<none>";
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator.toLowerCase()} (${(e.values ?? []).join(",")})`);
  }
  return parts.join(",") || "<everything>";
}
