// Why a policy is left out of a relay's config: the reasons its Accepted condition names, the most
// actionable first (controllers/maildomainpolicy/conditions.ts sorts by this order).
export const PROBLEM_REASONS = [
  "DomainConflict",
  "MissingReference",
  "InvalidReference",
  "InvalidSpec",
  "ConfigTooLarge",
  // its material is not mounted in the relay's pods yet (render/mounted-sources.ts): resolves itself
  "MountPending",
] as const;
export type ProblemReason = (typeof PROBLEM_REASONS)[number];

export interface PolicyProblem {
  reason: ProblemReason;
  message: string;
}
