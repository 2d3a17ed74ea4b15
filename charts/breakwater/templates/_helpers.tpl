{{/*
Names the operator looks up by itself (src/api/names.ts): the webhook Service, the
MutatingWebhookConfiguration and the certificate Secret. They are fixed, so one release per cluster;
the chart's tests check them against names.ts.
*/}}
{{- define "breakwater.webhookServiceName" -}}breakwater-webhook{{- end }}
{{- define "breakwater.webhookConfigurationName" -}}breakwater{{- end }}
{{- define "breakwater.webhookName" -}}inject.breakwater.dev{{- end }}
{{- define "breakwater.webhookPath" -}}/mutate-pods{{- end }}

{{/*
The URL the webhook is registered by, or nothing for the Service: webhook.url, else the URL an operator
run outside the cluster (--webhook-url) put in the live object. Kept, because an upgrade that put the
Service back beside that URL would be refused ("exactly one of url or service"). lookup sees nothing
under `helm template`.
*/}}
{{- define "breakwater.webhookUrl" -}}
{{- $url := .Values.webhook.url -}}
{{- if not $url -}}
{{- $live := lookup "admissionregistration.k8s.io/v1" "MutatingWebhookConfiguration" "" (include "breakwater.webhookConfigurationName" .) -}}
{{- range (dig "webhooks" list $live) -}}
{{- if and (eq .name (include "breakwater.webhookName" $)) .clientConfig.url -}}
{{- $url = .clientConfig.url -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $url -}}
{{- end }}
{{- define "breakwater.certSecretName" -}}breakwater-webhook-certs{{- end }}

{{- define "breakwater.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Names of the objects only the chart refers to. */}}
{{- define "breakwater.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "breakwater.operatorName" -}}
{{- printf "%s-operator" (include "breakwater.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "breakwater.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "breakwater.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "breakwater.selectorLabels" -}}
app.kubernetes.io/name: {{ include "breakwater.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* repository:tag (tag defaulting to appVersion), or repository@digest when a digest is given. */}}
{{- define "breakwater.imageRef" -}}
{{- $img := index . 0 }}{{- $appVersion := index . 1 }}
{{- if $img.digest }}{{ printf "%s@%s" $img.repository $img.digest }}{{ else }}{{ printf "%s:%s" $img.repository ($img.tag | default $appVersion) }}{{ end }}
{{- end }}

{{- define "breakwater.image" -}}
{{- include "breakwater.imageRef" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{/* The sidecar's own image when a repository is given, else the operator's. */}}
{{- define "breakwater.sidecarImage" -}}
{{- $img := ternary .Values.image .Values.sidecar.image (empty .Values.sidecar.image.repository) }}
{{- include "breakwater.imageRef" (list $img .Chart.AppVersion) }}
{{- end }}

{{/*
The namespaces whose pods never reach the webhook: kube-system always (a webhook that is down must
not be able to stop the control plane's pods), the configured ones, and our own.
*/}}
{{- define "breakwater.excludedNamespaces" -}}
{{- $ns := concat (list "kube-system") .Values.webhook.excludeNamespaces (list .Release.Namespace) | uniq }}
{{- toJson $ns }}
{{- end }}

{{- define "breakwater.certIssuerName" -}}
{{- printf "%s-selfsigned" (include "breakwater.fullname" .) }}
{{- end }}

{{- define "breakwater.caIssuerName" -}}
{{- printf "%s-ca" (include "breakwater.fullname" .) }}
{{- end }}
