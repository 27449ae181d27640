// Per relay, the configurations this process compiled lately (config hash → per included policy what
// that config enforces of it, its token): a relay pod reports the hash of the config it runs, and this
// says whether that config enforces a policy as it is compiled now. A pod running a config from before
// an unrelated policy changed still enforces it (no N status writes per config revision). Bounded:
// REVISIONS per relay, the most recently used kept. Not the cluster's state: a restarted operator
// knows only what it compiles from then on (and says "unknown" until then).

/** How many compiled configurations per relay are remembered. */
const REVISIONS = 8;

export class ConfigRevisions {
  private readonly byRelay = new Map<string, Map<string, ReadonlyMap<string, string>>>();

  /** Remembers a relay's config `hash` and, per included policy key, its token. */
  remember(relayKey: string, hash: string, tokens: ReadonlyMap<string, string>): void {
    let r = this.byRelay.get(relayKey);
    if (!r) this.byRelay.set(relayKey, (r = new Map<string, ReadonlyMap<string, string>>()));
    r.delete(hash);
    r.set(hash, tokens);
    while (r.size > REVISIONS) r.delete(r.keys().next().value!);
  }

  /**
   * Whether the relay's config `hash` enforces policy `policyKey` with `token` (its compile now), or
   * undefined when that config is not known here.
   */
  enforces(
    relayKey: string,
    hash: string,
    policyKey: string,
    token: string | undefined,
  ): boolean | undefined {
    const r = this.byRelay.get(relayKey);
    const tokens = r?.get(hash);
    if (!r || !tokens) return undefined;
    // most recently used last: the hashes pods report stay while a burst compiles many others
    r.delete(hash);
    r.set(hash, tokens);
    return token !== undefined && tokens.get(policyKey) === token;
  }

  forget(relayKey: string): void {
    this.byRelay.delete(relayKey);
  }
}
