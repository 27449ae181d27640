// The API types and schemas the operator works with (the single source is api/v1alpha1).
export {
  MailRelay,
  MailDomainPolicy,
  RelayCredential,
  ConditionType,
  durationSeconds,
  DEFAULT_CERTIFICATE_EXPIRY_WARNING,
  DEFAULT_MAX_DURATION,
  quantityBytes,
  API_VERSION,
  GROUP,
  type IssuerRef,
  type LabelSelector,
  type MailRelayStatus,
  type MailDomainPolicyStatus,
  type RelayCredentialStatus,
} from "../api/v1alpha1/index.js";
