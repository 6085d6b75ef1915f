{{/*
Names, labels and the pieces shared by the operator Deployment and the Job template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "vctp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else "<release>-<chart name>", else the
release name alone when it already contains the chart name. At most 48 characters, so that
the suffixes below (-operator, -metrics, …) keep names within 63 (a Service name, a label value).
*/}}
{{- define "vctp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "vctp-0.1.0", the value of helm.sh/chart. */}}
{{- define "vctp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select one release's pods; never change them (selectors are immutable). */}}
{{- define "vctp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vctp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The standard labels every object of the chart carries. */}}
{{- define "vctp.labels" -}}
helm.sh/chart: {{ include "vctp.chart" . }}
{{ include "vctp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vctp
{{- end }}

{{/* Selector labels of the operator pods. */}}
{{- define "vctp.operator.selectorLabels" -}}
{{ include "vctp.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector labels of the API server pods (`vctp serve`). */}}
{{- define "vctp.api.selectorLabels" -}}
{{ include "vctp.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{/* Names of the objects. */}}
{{- define "vctp.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "vctp.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vctp.jobs.serviceAccountName" -}}
{{- if .Values.jobs.serviceAccount.create }}
{{- default (printf "%s-job" (include "vctp.fullname" .)) .Values.jobs.serviceAccount.name }}
{{- else }}
{{- required "jobs.serviceAccount.name is required when jobs.serviceAccount.create is false" .Values.jobs.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vctp.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (printf "%s-api" (include "vctp.fullname" .)) .Values.api.serviceAccount.name }}
{{- else }}
{{- required "api.serviceAccount.name is required when api.serviceAccount.create is false" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Where the API creates the AggregationJobs an admin asks for: api.aggregationNamespace, else
the release namespace. It must be watched, else no operator would ever run them.
*/}}
{{- define "vctp.api.aggregationNamespace" -}}
{{- $namespace := .Values.api.aggregationNamespace | default .Release.Namespace }}
{{- if not (has $namespace (include "vctp.watchNamespaces" . | fromJsonArray)) }}
{{- fail (printf "api.aggregationNamespace %q is not a watched namespace (watchNamespaces): the operator would never run the AggregationJobs the API creates there" $namespace) }}
{{- end }}
{{- $namespace }}
{{- end }}

{{/* Where the LDAP CA bundle (api.auth.ldap.caSecret / caConfigMap) is mounted. */}}
{{- define "vctp.api.ldapCaFile" -}}
/etc/vctp-ldap/ca.crt
{{- end }}

{{- define "vctp.leaseName" -}}
{{- default (printf "%s-leader" (include "vctp.fullname" .)) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{- define "vctp.settingsConfigMapName" -}}
{{- printf "%s-settings" (include "vctp.fullname" .) }}
{{- end }}

{{- define "vctp.jobTemplateConfigMapName" -}}
{{- printf "%s-job-template" (include "vctp.fullname" .) }}
{{- end }}

{{- define "vctp.metricsServiceName" -}}
{{- printf "%s-metrics" (include "vctp.fullname" .) }}
{{- end }}

{{- define "vctp.databaseSecretName" -}}
{{- default (printf "%s-database" (include "vctp.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{/*
The watched namespaces as a JSON list: watchNamespaces, or the release namespace when it is
empty. Use as `include "vctp.watchNamespaces" . | fromJsonArray`.
*/}}
{{- define "vctp.watchNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/* The namespaces that hold the settings ConfigMap: the release namespace and the watched ones. */}}
{{- define "vctp.settingsNamespaces" -}}
{{- $watched := include "vctp.watchNamespaces" . | fromJsonArray }}
{{- prepend $watched .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
"repository:tag" or "repository@digest" from an image mapping with fallbacks. No vctp image is
published, so there is no default repository to fall back on.
*/}}
{{- define "vctp.image" -}}
{{- $repository := .image.repository | default .fallback.repository | required "image.repository is required: no vctp image is published; build one (scripts/image.sh or the Dockerfile), load or push it, and set image.repository (and image.tag) to it" }}
{{- $digest := .image.digest | default .fallback.digest }}
{{- if $digest }}
{{- printf "%s@%s" $repository $digest }}
{{- else }}
{{- printf "%s:%s" $repository (.image.tag | default .fallback.tag | default .appVersion) }}
{{- end }}
{{- end }}

{{- define "vctp.operator.image" -}}
{{- include "vctp.image" (dict "image" .Values.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{- define "vctp.jobs.image" -}}
{{- include "vctp.image" (dict "image" .Values.jobs.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/*
The settings file. The chart owns reports_url / object_store_options (from objectStore.*);
without an object store the reports go to /tmp/reports (lost with the pod).
*/}}
{{- define "vctp.settingsFile" -}}
{{- $settings := deepCopy (.Values.settings | default dict) }}
{{- if .Values.objectStore.url }}
{{- $_ := set $settings "reports_url" .Values.objectStore.url }}
{{- else }}
{{- $_ := set $settings "reports_dir" "/tmp/reports" }}
{{- end }}
{{- if .Values.objectStore.options }}
{{- $_ := set $settings "object_store_options" .Values.objectStore.options }}
{{- end }}
{{- with .Values.rateCards }}
{{- $_ := set $settings "rate_cards" . }}
{{- end }}
{{- with .Values.tenantRules }}
{{- $_ := set $settings "tenant_rules" . }}
{{- end }}
{{- if and .Values.api.enabled .Values.api.auth.enabled }}
{{- include "vctp.api.authSettings" (dict "settings" $settings "auth" .Values.api.auth) }}
{{- end -}}
# vctp settings, rendered by the vctp Helm chart from the `settings` and `objectStore` values.
settings:
  {{- toYaml $settings | nindent 2 }}
{{- end }}

{{/*
The `vctp serve` authentication keys, added to the settings mapping (api.auth.*). Secrets are
not among them: the signing key and the LDAP bind account come from Secrets as env vars.
Empty optional values are left out, so vctp's defaults apply.
*/}}
{{- define "vctp.api.authSettings" -}}
{{- $settings := .settings }}
{{- $auth := .auth }}
{{- $ldap := $auth.ldap }}
{{- $_ := set $settings "auth_enabled" true }}
{{- $_ := set $settings "auth_mode" $auth.mode }}
{{- $_ := set $settings "auth_group_role_mappings" $auth.groupRoleMappings }}
{{- $_ := set $settings "auth_token_lifespan_minutes" $auth.tokenLifespanMinutes }}
{{- $_ := set $settings "auth_jwt_issuer" $auth.jwtIssuer }}
{{- $_ := set $settings "auth_jwt_audience" $auth.jwtAudience }}
{{- $_ := set $settings "auth_clock_skew_seconds" $auth.clockSkewSeconds }}
{{- $_ := set $settings "enable_pprof" $auth.enablePprof }}
{{- with $ldap.bindAddress }}
{{- $_ := set $settings "ldap_bind_address" . }}
{{- end }}
{{- with $ldap.baseDn }}
{{- $_ := set $settings "ldap_base_dn" . }}
{{- end }}
{{- with $ldap.userBaseDn }}
{{- $_ := set $settings "ldap_user_base_dn" . }}
{{- end }}
{{- with $ldap.userAttribute }}
{{- $_ := set $settings "ldap_user_attribute" . }}
{{- end }}
{{- with $ldap.groups }}
{{- $_ := set $settings "ldap_groups" . }}
{{- end }}
{{- if or $ldap.caSecret $ldap.caConfigMap }}
{{- $_ := set $settings "ldap_trust_cert_file" (include "vctp.api.ldapCaFile" .) }}
{{- end }}
{{- $_ := set $settings "ldap_disable_validation" $ldap.disableValidation }}
{{- $_ := set $settings "ldap_insecure" $ldap.insecure }}
{{- end }}

{{/* Environment shared by the operator and the Job containers. */}}
{{- define "vctp.commonEnv" -}}
- name: VCTP_CONFIG
  value: /etc/vctp/vctp.yml
- name: VCTP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "vctp.databaseSecretName" . }}
      key: {{ .Values.database.key }}
- name: TMPDIR
  value: /tmp
{{- end }}

{{/*
The PodDisruptionBudget apiVersion: what the cluster serves (helm install, Argo CD), else by
the Kubernetes version (`helm template`): policy/v1 since 1.21, policy/v1beta1 before.
*/}}
{{- define "vctp.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}
{{- print "policy/v1" }}
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" }}
{{- print "policy/v1beta1" }}
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}
{{- print "policy/v1" }}
{{- else }}
{{- print "policy/v1beta1" }}
{{- end }}
{{- end }}
