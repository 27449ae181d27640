// The compiles of this process, remembered: per policy its own compile (policy.ts), per relay its
// parsed spec, whether its own settings compile, and its last config (relay-config.ts), each valid for
// exactly the inputs it was computed from (a fingerprint of them: a changed input is a different
// fingerprint, and the result is recomputed). A cache keyed by inputs, not truth. Also each policy's
// verdict on a relay (included, or why not) in O(its domains) instead of compiling the relay, and
// what a pod's config enforces (revisions.ts). Results are shared: callers must not mutate them.
import { hash } from "node:crypto";
import { MailRelay as MailRelaySchema, type MailRelay } from "../api.js";
import { keyOf, type MailRelayObject, type PolicyObject } from "../objects.js";
import { selectorMatches } from "./selector.js";
import type { ClusterState } from "../state.js";
import type { ClusterView } from "./references.js";
import {
  claimIndex,
  claimsOver,
  floorFor,
  holdsPattern,
  type Claimant,
  type TlsFloor,
} from "./domain-claims.js";
import { ownedWhenLeftOut } from "./left-out.js";
import { refusedSuffixRecords, relayIdOf } from "./claim-age.js";
import { clockFree, exceptionPhase } from "./exceptions.js";
import { compilePolicyCore, withClaimAges, type PolicyCore, type PolicyEntry } from "./policy.js";
import type { PolicyProblem } from "./problems.js";
import { compileRelayConfig, relayClaimOf, type CompileResult, type EncodedConfig } from "./relay-config.js";
import { judgement, relayVerdict, type Judgement } from "./relay-verdict.js";
import { encodeConfigAsync } from "../../relay/contract/config-encoding.js";
import { ConfigRevisions } from "./revisions.js";
import {
  collapsedProblem,
  configTooLarge,
  collapsedLeftOut,
  fewestLeftOut,
  frozenProblem,
  leaveOutOrder,
  tooLargeProblem,
  type ConfigSizes,
} from "./config-fit.js";

/** A relay's config as applied (memo.ts fitted), and the policies it does not enforce. */
interface Fit {
  result: EncodedConfig;
  /** The policies left out for size. */
  leftOut: ReadonlySet<string>;
  /** Their problem (or, with `applied`, that of every policy not in it). */
  problem?: PolicyProblem;
  /** Nothing fits, nothing is applied: the policies of the last config applied (as this process knows). */
  applied?: ReadonlySet<string>;
  /** The left-out policies are collapsed into a broken catch-all (left-out.ts). */
  collapsed?: boolean;
  /** How many of the search's order it left out (withCovering may add more): the next search's hint. */
  searched?: number;
}

const sizesOf = (e: EncodedConfig): ConfigSizes => ({
  configBytes: e.stored.length,
  configJsonBytes: Buffer.byteLength(e.json),
});

/** A relay's spec identity: uid and generation (or, without one, the spec itself). */
function relaySpecId(r: MailRelay): string {
  const g = r.metadata.generation;
  return `${r.metadata.uid ?? ""}:${g !== undefined ? g : JSON.stringify(r.spec)}`;
}

/**
 * What a policy's compile depends on of the policy itself: uid and generation (or, without one, the
 * spec), and of the clock: which of its exceptions are active (compile/exceptions.ts).
 */
function specId(p: PolicyObject, now: number): string {
  return `${coreId(p, now)}:${claimsId(p)}`;
}

/** specId without the status: what the policy's own compile reads (policy.ts PolicyCore). */
function coreId(p: PolicyObject, now: number): string {
  const g = p.metadata.generation;
  return `${p.metadata.uid ?? ""}:${g !== undefined ? g : JSON.stringify(p.spec)}:${exceptionPhase(p, now)}`;
}

/**
 * What of the status the claims' ages read (claim-age.ts): the records (and which of them the status
 * refuses as public-suffix wildcards), or whether any status exists.
 */
function claimsId(p: PolicyObject): string {
  const st = p.status as
    { claims?: unknown; selectedBy?: unknown; footprint?: unknown; conditions?: unknown[] } | undefined;
  // no status, or one the CRD cannot produce (not an object): no claims recorded
  if (!st || typeof st !== "object") return "";
  let id = claimsIds.get(st);
  if (id === undefined) claimsIds.set(st, (id = statusClaimsId(st)));
  return id;
}

/**
 * claimsId per status object: a cached policy's status is the same object until its next watch event
 * (informers replace objects, never edit them), and every relay compile asks it of every selected
 * policy (its fingerprint): 10,000 JSON texts per compile were a fifth of a one-policy change's
 * compile at 10,000 policies (issue 18). Kept as a digest of that text (43 characters, not 200).
 */
const claimsIds = new WeakMap<object, string>();

function statusClaimsId(st: {
  claims?: unknown;
  selectedBy?: unknown;
  footprint?: unknown;
  conditions?: unknown[];
}): string {
  return st.claims !== undefined
    ? hash(
        "sha256",
        JSON.stringify([st.claims, st.selectedBy, st.footprint, refusedSuffixRecords(st)]),
        "base64url",
      )
    : st.conditions?.length
      ? "older"
      : "";
}

/**
 * What compileRelayConfig reads, as a string: the relay's name, generation, spec and recorded
 * MTA-STS Secret (status.issuedSecretUIDs.mtaSts); per selected
 * policy its name and generation (the apiserver bumps it on every spec change; resourceVersion would
 * change with every status write) or, without one, its spec, and its recorded claims (status.claims:
 * which of two claims is older); and the view (viewFingerprint).
 * O(selected policies), no parsing.
 */
export function compileFingerprint(
  relay: MailRelay,
  selected: readonly PolicyObject[],
  viewFp: string,
  now = 0,
  mounted?: ReadonlySet<string>,
): string {
  const parts: string[] = [
    keyOf(relay),
    String(relay.metadata.generation ?? ""),
    relay.metadata.deletionTimestamp ? "deleted" : "",
    JSON.stringify(relay.spec),
    // which MTA-STS Secret is the relay's own (own-domains.ts)
    relay.status?.issuedSecretUIDs?.mtaSts ?? "",
  ];
  for (const p of selected) parts.push(`p:${p.metadata.name}:${specId(p, now)}`);
  parts.push(viewFp);
  // what the relay's pods mount (relay-config.ts FitProbe.mounted)
  parts.push(mounted ? `m:${[...mounted].sort().join("\0")}` : "m-");
  return parts.join("\n");
}

/** One policy's verdict on one relay: whether the relay's config includes it, or why not. */
export interface PolicyVerdict {
  included: boolean;
  problems: PolicyProblem[];
  /** When not included: the domains whose mail the relay defers meanwhile. */
  deferred: string[];
}

export class CompileMemo {
  /**
   * Per policy key: its own compile (core), valid for one spec (coreId) and one view, and its entry,
   * valid for those and one status (claimsId): the operator's status write that follows a policy's
   * first compile dates its claims without compiling it again.
   */
  private readonly entries = new Map<
    string,
    {
      id: string;
      viewFp: string;
      core: PolicyCore;
      claims: string;
      entry: PolicyEntry;
      raw: PolicyObject;
      rv: string | undefined;
    }
  >();
  private readonly relays = new Map<string, { id: string; relay: MailRelay | undefined }>();
  private readonly relayChecks = new Map<string, { id: string; viewFp: string; error: unknown }>();
  private readonly compiled = new Map<
    string,
    { fp: string; result: CompileResult } | { fp: string; error: unknown }
  >();
  private readonly revisions = new ConfigRevisions();
  /** Per relay (relayIdOf): the policies it selected when first seen new; undefined: seen with a status. */
  private readonly births = new Map<string, Set<string> | undefined>();
  /** Per relay key: its last config's gzip (by hash), encoded on the thread pool. */
  private readonly stored = new Map<string, { hash: string; gz: Promise<Buffer> }>();
  /** Per relay key: the config that fits (fitted), for one full compile, and the policies it leaves out. */
  private readonly fits = new Map<string, Fit & { full: CompileResult }>();
  /** Per relay key: the policies its applied config leaves out until its pods mount their material. */
  private readonly pending = new Map<string, ReadonlyMap<string, PolicyProblem>>();
  /** Called with the keys of the policies a new fit leaves out or takes back (their verdicts changed). */
  private readonly leftOutWatchers: ((policyKeys: string[]) => void)[] = [];
  /** Memo hits and misses (tests, debugging). */
  readonly compileStats = { hits: 0, misses: 0 };

  constructor(
    readonly state: ClusterState,
    /** The clock exceptions are judged by (compile/exceptions.ts). */
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** One policy compiled on its own, memoised per spec and namespace view. */
  policyEntry(p: PolicyObject): PolicyEntry {
    const ns = p.metadata.namespace ?? "";
    const { view, fp } = this.state.viewOf(ns);
    return this.entryIn(p, ns, view, fp, this.now().getTime());
  }

  /** policyEntry with the namespace's view and the clock read once by the caller (a compile's N policies). */
  private entryIn(p: PolicyObject, ns: string, view: ClusterView, fp: string, now: number): PolicyEntry {
    const k = keyOf(p);
    const hit = this.entries.get(k);
    // the very object of the last compile (informers replace a changed object, never edit it; its
    // resourceVersion compared too, against an edit in place), in the same view, and no exception to
    // start or end with the clock: nothing the entry depends on changed, without building its ids
    // again (10,000 per relay compile, issue 18)
    if (hit && hit.raw === p && hit.rv === p.metadata.resourceVersion && hit.viewFp === fp && clockFree(p))
      return hit.entry;
    const id = coreId(p, now);
    const claims = claimsId(p);
    if (hit && hit.id === id && hit.viewFp === fp) {
      if (hit.claims === claims) {
        hit.raw = p;
        hit.rv = p.metadata.resourceVersion;
        return hit.entry;
      }
      const entry = withClaimAges(hit.core, p);
      this.entries.set(k, { ...hit, claims, entry, raw: p, rv: p.metadata.resourceVersion });
      return entry;
    }
    const core = compilePolicyCore(p, ns, view, now);
    const entry = withClaimAges(core, p);
    this.entries.set(k, { id, viewFp: fp, core, claims, entry, raw: p, rv: p.metadata.resourceVersion });
    return entry;
  }

  /** The policies `relay` selects that claim `domain` (parsed or not). */
  private claimants(relay: MailRelay, domain: string): Claimant[] {
    const ns = relay.metadata.namespace ?? "";
    // the same pattern, or an older policy's wildcard covering it (claimsOver)
    const patterns = claimsOver(domain);
    const out: Claimant[] = [];
    for (const name of this.state.claimingNames(ns, patterns)) {
      const q = this.state.caches.policies.get(ns, name);
      if (!q || q.metadata.deletionTimestamp) continue;
      if (!selectorMatches(relay.spec.policySelector ?? {}, q.metadata.labels)) continue;
      const e = this.policyEntry(q);
      // as the compile counts them (domain-claims.ts holdsPattern: a public-suffix wildcard only recorded)
      if (e.domains.some((d) => patterns.includes(d) && holdsPattern(e, d))) out.push(e);
    }
    return out;
  }

  /**
   * Whether `relay`'s config includes policy `p`, or why not: exactly what compile(relay) says about
   * it (included / problems), in O(p's domains and the policies sharing them) instead of O(all the
   * relay's policies). undefined when the relay's own settings do not compile (reported on the relay).
   */
  verdict(relay: MailRelay, p: PolicyObject): PolicyVerdict | undefined {
    if (this.relayError(relay)) return undefined;
    const e = this.policyEntry(p);
    const v = relayVerdict(e, (d) => this.claimants(relay, d), relayClaimOf(relay));
    // left out of the last config that fits (fitted), or not in the last applied one when nothing
    // fits: the relay's reconcile decided it, read here
    const fit = this.fits.get(keyOf(relay));
    // its material not mounted in the relay's pods yet (render/mounted-sources.ts): the reconcile's
    // compile decided it, read here
    const mount = v.problems.length ? undefined : this.pending.get(keyOf(relay))?.get(e.key);
    if (mount && !fit?.leftOut.has(e.key))
      return { included: false, problems: [mount], deferred: [...ownedWhenLeftOut(e, v)].sort() };
    if (fit?.problem && (fit.leftOut.has(e.key) || (fit.applied && !fit.applied.has(e.key))))
      return {
        included: false,
        problems: [...v.problems, fit.problem],
        deferred: v.problems.length ? v.deferred : [...e.domains].sort((a, b) => a.localeCompare(b)),
      };
    return { included: !v.problems.length, ...v };
  }

  /** Calls `watcher` with the keys of the policies whose verdict a new fit changed (left out or back in). */
  watchLeftOut(watcher: (policyKeys: string[]) => void): void {
    this.leftOutWatchers.push(watcher);
  }

  /**
   * Whether `relay` selected the policy `policyKey` when it was born: the set it selected the first
   * time this process saw it without a status (a relay just created, or created again from Git under
   * a new uid). Those selections all date from the relay's creation (claim-age.ts claimRecords), not
   * from the order the policies happen to be reconciled in, which a policy's name would decide (the
   * review of the claim-age fix). False for a relay first seen with a status.
   */
  selectedAtBirth(relay: MailRelay, policyKey: string): boolean {
    return this.noteBirth(relay)?.has(policyKey) ?? false;
  }

  private noteBirth(relay: MailRelay, selected?: readonly PolicyObject[]): ReadonlySet<string> | undefined {
    const id = relayIdOf(relay.metadata);
    const known = this.births.get(id);
    if (known || this.births.has(id)) return known;
    const born = !relay.status?.conditions?.length;
    const set = born ? new Set((selected ?? this.state.selectedPolicies(relay)).map(keyOf)) : undefined;
    this.births.set(id, set);
    return set;
  }

  /**
   * The policy `policyKey` is selected now by the relays `selecting` (relayIdOf) only: a relay it was
   * born with that no longer selects it forgets that, so a selection that starts again is new there
   * (the review of selectedAtBirth: off and back on, it was dated from the relay's creation again).
   */
  selectedNowBy(policyKey: string, selecting: readonly string[]): void {
    for (const [id, set] of this.births) if (set && !selecting.includes(id)) set.delete(policyKey);
  }

  /** The catch-all floor `relay` holds policy `p` to (domain-claims.ts floorFor), if any. */
  floorOf(relay: MailRelay, p: PolicyObject): TlsFloor | undefined {
    return floorFor(this.policyEntry(p), (d) => this.claimants(relay, d), relayIdOf(relay.metadata));
  }

  /**
   * A MailRelay as the API schema reads it (defaults applied), or undefined when it does not parse;
   * memoised per spec (uid and generation), so N policy reconciles do not parse their relay N times.
   */
  parsedRelay(raw: MailRelayObject): MailRelay | undefined {
    const k = keyOf(raw);
    const id = relaySpecId(raw);
    const hit = this.relays.get(k);
    if (hit?.id === id) return hit.relay;
    const p = MailRelaySchema.safeParse(raw);
    const relay = p.success ? p.data : undefined;
    this.relays.set(k, { id, relay });
    return relay;
  }

  /** The relay's own compile problem (its settings, without policies), memoised per spec and view. */
  private relayError(relay: MailRelay): unknown {
    const { view, fp } = this.state.viewOf(relay.metadata.namespace ?? "");
    const id = relaySpecId(relay);
    const k = keyOf(relay);
    const hit = this.relayChecks.get(k);
    if (hit && hit.id === id && hit.viewFp === fp) return hit.error;
    let error: unknown;
    try {
      compileRelayConfig(relay, [], view);
    } catch (e) {
      error = e ?? new Error("relay does not compile");
    }
    this.relayChecks.set(k, { id, viewFp: fp, error });
    return error;
  }

  /**
   * The relay's compiled config. Memoised per relay by a fingerprint of exactly what the compile reads
   * (the relay's spec and generation, the selected policies' names and generations, the namespace's
   * Secret/ConfigMap keys and credential specs), and each policy's own part per policy (policyEntry),
   * so a new compile after one policy changed re-parses that policy only.
   */
  compile(relay: MailRelay, mounted?: ReadonlySet<string>): CompileResult {
    const selected = this.state.selectedPolicies(relay);
    this.noteBirth(relay, selected);
    const ns = relay.metadata.namespace ?? "";
    const { view, fp: viewFp } = this.state.viewOf(ns);
    const now = this.now().getTime();
    const fp = compileFingerprint(relay, selected, viewFp, now, mounted);
    const k = keyOf(relay);
    const hit = this.compiled.get(k);
    if (hit?.fp === fp) {
      this.compileStats.hits++;
      if ("error" in hit) throw hit.error;
      return hit.result;
    }
    this.compileStats.misses++;
    try {
      const result = compileRelayConfig(
        relay,
        selected,
        view,
        (raw) => this.entryIn(raw as PolicyObject, ns, view, viewFp, now),
        mounted ? { mounted } : {},
      );
      this.compiled.set(k, { fp, result });
      this.revisions.remember(k, result.hash, result.tokens);
      return result;
    } catch (e) {
      this.compiled.set(k, { fp, error: e });
      throw e;
    }
  }

  /**
   * The relay's config as it is applied: compile(relay), gzipped (encoded), and when that does not fit
   * (config-fit.ts), the compile with the fewest policies left out that does, each measured by its
   * gzip (on the thread pool). Memoised per full compile; a full config that fits costs nothing more.
   * When even leaving every policy out does not fit, the full compile (too large: not applied).
   */
  async fitted(relay: MailRelay, mounted?: ReadonlySet<string>): Promise<EncodedConfig> {
    const full = this.compile(relay, mounted);
    const k = keyOf(relay);
    const hit = this.fits.get(k);
    if (hit?.full === full) return hit.result;
    const enc = await this.encoded(full);
    let fit: Fit = { result: enc, leftOut: new Set<string>() };
    if (configTooLarge(sizesOf(enc))) {
      const selected = this.state.selectedPolicies(relay);
      const ns = relay.metadata.namespace ?? "";
      const { view, fp: viewFp } = this.state.viewOf(ns);
      const now = this.now().getTime();
      const entryOf = (raw: unknown): PolicyEntry => this.entryIn(raw as PolicyObject, ns, view, viewFp, now);
      const entries = selected.map(entryOf);
      const order = leaveOutOrder(entries, relayIdOf(relay.metadata));
      // one by one first; collapsed (left-out.ts) only when that does not fit with every policy out;
      // collapsed, the catch-alls and the wildcards over a left-out pattern go too (collapsedLeftOut)
      // a policy's judgement (its verdict, the host rule it keeps) is the same in every probe of one
      // fit: asked once each, here and by the probes' compiles (relay-config.ts FitProbe), with the
      // claim index the compile builds (its entries in key order: equal claims name their owners in it)
      const judgements = new Map<string, Judgement>();
      const claimantsOf = claimIndex([...entries].sort((a, b) => a.key.localeCompare(b.key)));
      const relayClaim = relayClaimOf(relay);
      const owned = (e: PolicyEntry): readonly string[] => {
        let j = judgements.get(e.key);
        if (!j) judgements.set(e.key, (j = judgement(e, claimantsOf, relayClaim)));
        return ownedWhenLeftOut(e, j.verdict);
      };
      const leftOutAt = (ordered: readonly string[], n: number, collapsed: boolean): Set<string> =>
        collapsed ? collapsedLeftOut(entries, ordered.slice(0, n), owned) : new Set(ordered.slice(0, n));
      const search = (ordered: readonly string[], collapsed: boolean) =>
        fewestLeftOut(
          ordered,
          async (n) => {
            const c = compileRelayConfig(relay, selected, view, entryOf, {
              leftOut: leftOutAt(ordered, n, collapsed),
              collapsed,
              judgements,
              ...(mounted ? { mounted } : {}),
            });
            const e = { ...c, stored: await encodeConfigAsync(c.json) };
            return configTooLarge(sizesOf(e)) ? undefined : e;
          },
          (hit?.collapsed ?? false) === collapsed ? (hit?.searched ?? 0) : 0,
        );
      // (after a collapsed fit, one probe: every policy left out one by one)
      const oneByOne = await search(order, false);
      const found = oneByOne ?? (await search(order, true));
      if (found) {
        const collapsed = !oneByOne;
        const leftOut = leftOutAt(order, found.n, collapsed);
        fit = {
          result: found.result,
          leftOut,
          problem: (collapsed ? collapsedProblem : tooLargeProblem)(k),
          searched: found.n,
          ...(collapsed ? { collapsed } : {}),
        };
        this.revisions.remember(k, found.result.hash, found.result.tokens);
      } else
        // nothing fits: nothing is applied, the relay keeps the last config applied; only the policies
        // in it (as far as this process knows: none after a restart) are in force
        fit = {
          result: enc,
          leftOut: new Set<string>(),
          problem: frozenProblem(k),
          applied: hit ? (hit.applied ?? new Set(hit.result.included)) : new Set<string>(),
        };
    }
    // a full compile from while this one was measured: it is the newer, keep it
    if (this.fits.get(k) !== hit) return fit.result;
    this.fits.set(k, { full, ...fit });
    // the policies waiting for their material to be mounted (relay-config.ts MountPending)
    const pendingBefore = this.pending.get(k) ?? new Map<string, PolicyProblem>();
    const pendingNow = new Map<string, PolicyProblem>();
    for (const [p, problems] of fit.result.problems) {
      const mount = problems.find((x) => x.reason === "MountPending");
      if (mount) pendingNow.set(p, mount);
    }
    if (pendingNow.size) this.pending.set(k, pendingNow);
    else this.pending.delete(k);
    // the policies whose verdict this fit changed: those left out or taken back; all of them when the
    // relay's config stops or starts being applied
    const before = hit?.leftOut ?? new Set<string>();
    const changed =
      fit.applied || hit?.applied
        ? [...new Set([...before, ...this.state.selectedPolicies(relay).map(keyOf)])]
        : [
            ...[...fit.leftOut].filter((p) => !before.has(p)),
            ...[...before].filter((p) => !fit.leftOut.has(p)),
            ...[...pendingNow.keys()].filter((p) => !pendingBefore.has(p)),
            ...[...pendingBefore.keys()].filter((p) => !pendingNow.has(p)),
          ];
    if (changed.length) for (const w of this.leftOutWatchers) w(changed);
    return fit.result;
  }

  /**
   * The compile with its config.json gzipped as the ConfigMap holds it: encoded on libuv's thread
   * pool (not on the event loop, where status writes and watches wait), once per relay and config hash.
   */
  async encoded(compiled: CompileResult): Promise<EncodedConfig> {
    const k = compiled.config.relay;
    let hit = this.stored.get(k);
    if (hit?.hash !== compiled.hash) {
      hit = { hash: compiled.hash, gz: encodeConfigAsync(compiled.json) };
      this.stored.set(k, hit);
      // a failed encoding is not remembered (the next reconcile tries again)
      hit.gz.catch(() => {
        if (this.stored.get(k) === hit) this.stored.delete(k);
      });
    }
    return { ...compiled, stored: await hit.gz };
  }

  /**
   * Whether the relay config with sha256 `hash` enforces policy `p` as it is compiled now (the same
   * token), or undefined when this process does not know that config (yet: compile(relay) adds the
   * current one).
   */
  configEnforces(relay: MailRelay, hash: string, p: PolicyObject): boolean | undefined {
    return this.revisions.enforces(keyOf(relay), hash, keyOf(p), this.policyEntry(p).token);
  }

  /** Drops a deleted relay's memoised compiles. */
  forgetRelay(relayKey: string): void {
    this.compiled.delete(relayKey);
    this.stored.delete(relayKey);
    this.fits.delete(relayKey);
    this.pending.delete(relayKey);
    this.revisions.forget(relayKey);
    this.relayChecks.delete(relayKey);
    this.relays.delete(relayKey);
  }

  /** Drops a deleted policy's memoised compile. */
  forgetPolicy(policyKey: string): void {
    this.entries.delete(policyKey);
  }
}
