// Which image a MailRelay's pods run: spec.image when the operator allows it, the operator's default
// otherwise. Decided here, before anything is applied, so a refused image is a condition on the
// MailRelay (Accepted=False, reason ImageNotAllowed) and not a StatefulSet write the chart's admission
// policy turns away. Pure.
import type { RelaySettings } from "../render/input.js";

export type RelayImageChoice = { image: string } | { refused: string };

export function relayImage(specImage: string | undefined, settings: RelaySettings): RelayImageChoice {
  if (specImage === undefined || specImage === settings.image) return { image: settings.image };
  if (settings.allowedImages?.includes(specImage)) return { image: specImage };
  const allowed = [settings.image, ...(settings.allowedImages ?? [])].join(", ");
  return {
    refused: `spec.image ${specImage} is not an image this operator runs (allowed: ${allowed}): remove spec.image, or add the image to the chart value relayImage.allowed (operator flag --allowed-relay-images)`,
  };
}
