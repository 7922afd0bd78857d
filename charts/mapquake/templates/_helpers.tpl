{{/*
Helpers of the mapquake chart. Object names are fixed on purpose (see values.yaml): the controller
finds the agent token Secret and the agent pods by these names and labels.
*/}}

{{/* The chart's name; also app.kubernetes.io/name. */}}
{{- define "mapquake.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* name-version for helm.sh/chart ("+" is not allowed in label values). */}}
{{- define "mapquake.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: name and instance only. Components add app.kubernetes.io/component themselves;
custom labels never go here (selectors are immutable).
*/}}
{{- define "mapquake.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mapquake.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object: selector labels, version, chart, manager, and commonLabels. */}}
{{- define "mapquake.labels" -}}
{{ include "mapquake.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mapquake
helm.sh/chart: {{ include "mapquake.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The mapquake image reference: registry/repository:tag, tag defaulting to appVersion. */}}
{{- define "mapquake.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of a pod spec, when any are configured. */}}
{{/* The maptarget image: same registry as the mapquake image, and its tag unless maptargetTag is set. */}}
{{- define "mapquake.maptargetImage" -}}
{{- $tag := .Values.image.maptargetTag | default .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.maptargetRepository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.maptargetRepository $tag -}}
{{- end -}}
{{- end -}}

{{- define "mapquake.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The agent token Secret: the user's existing one, or the one the chart creates. */}}
{{- define "mapquake.agentTokenSecret" -}}
{{- .Values.agent.existingSecret | default "mapquake-agent-token" -}}
{{- end -}}

{{/*
KUBERNETES_SERVICE_HOST/PORT for pods that talk to the API, when apiServerOverride.host is set
(clusters without kube-proxy, where the API Service's ClusterIP answers nothing).
*/}}
{{- define "mapquake.apiServerEnv" -}}
{{- with .Values.apiServerOverride.host -}}
- name: KUBERNETES_SERVICE_HOST
  value: {{ . | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ $.Values.apiServerOverride.port | quote }}
{{- end }}
{{- end -}}

{{/* The run namespaces (as JSON), after the check the schema cannot express. */}}
{{- define "mapquake.runNamespaces" -}}
{{- if has .Release.Namespace .Values.runNamespaces -}}
{{- fail (printf "runNamespaces: %q is the release namespace; runs need their own namespace (the agent token lives in %q)" .Release.Namespace .Release.Namespace) -}}
{{- end -}}
{{- toJson .Values.runNamespaces -}}
{{- end -}}

{{/* The namespace nightly runs go to: nightly.runNamespace, else the first run namespace. */}}
{{- define "mapquake.nightlyRunNamespace" -}}
{{- $ns := .Values.nightly.runNamespace | default (first .Values.runNamespaces) | default "" -}}
{{- if not $ns -}}
{{- fail "nightly.enabled needs a run namespace: set runNamespaces (and optionally nightly.runNamespace)" -}}
{{- end -}}
{{- if not (has $ns .Values.runNamespaces) -}}
{{- fail (printf "nightly.runNamespace %q is not in runNamespaces %v: the controller has no Role there" $ns .Values.runNamespaces) -}}
{{- end -}}
{{- $ns -}}
{{- end -}}

{{/* The trend store's claim: nightly.persistence.existingClaim, else the one the chart creates. */}}
{{- define "mapquake.trendClaim" -}}
{{- .Values.nightly.persistence.existingClaim | default "mapquake-trends" -}}
{{- end -}}
