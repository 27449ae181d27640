{{/*
Names. With the release called "sealpost" (as the docs and deploy/kustomize/base use) every object is
"sealpost-operator", the names the operator itself defaults to (--leader-election-id, and the pod label
app.kubernetes.io/name=sealpost-operator its relays' NetworkPolicy admits).
*/}}
{{- define "sealpost.name" -}}
{{- default "sealpost" .Values.nameOverride | trunc 54 | trimSuffix "-" -}}
{{- end -}}

{{- define "sealpost.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "sealpost.name" . -}}
{{- if contains $name .Release.Name -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s-operator" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sealpost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sealpost.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sealpost.labels" -}}
{{ include "sealpost.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: sealpost
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "sealpost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sealpost.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest]; the tag defaults to the chart's appVersion. */}}
{{- define "sealpost.imageRef" -}}
{{- $ref := .image.repository -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end -}}
{{- if .image.digest }}{{ $ref = printf "%s@%s" $ref .image.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{- define "sealpost.image" -}}
{{- include "sealpost.imageRef" (dict "image" .Values.image "root" .) -}}
{{- end -}}

{{/* The relay image: each empty field of relayImage falls back to image (same build by default). */}}
{{- define "sealpost.relayImage" -}}
{{- $relay := dict "repository" (default .Values.image.repository .Values.relayImage.repository) -}}
{{- if .Values.relayImage.repository -}}
{{- $_ := set $relay "tag" .Values.relayImage.tag -}}
{{- $_ := set $relay "digest" .Values.relayImage.digest -}}
{{- else -}}
{{- $_ := set $relay "tag" (default .Values.image.tag .Values.relayImage.tag) -}}
{{- $_ := set $relay "digest" (default .Values.image.digest .Values.relayImage.digest) -}}
{{- end -}}
{{- include "sealpost.imageRef" (dict "image" $relay "root" .) -}}
{{- end -}}

{{/* The operator's RBAC rules, generated from operator/rbac.ts by scripts/gen-chart-rbac.ts. */}}
{{- define "sealpost.rbacRules" -}}
{{- .Files.Get "files/rbac-rules.yaml" | fromYaml | toJson -}}
{{- end -}}
