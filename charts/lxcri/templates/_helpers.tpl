{{/* Names are fixed, not release-derived: there is one lxcri per cluster (one RuntimeClass,
one set of Node labels), and the operator's peering and the docs refer to these names. */}}
{{- define "lxcri.fullname" -}}lxcri{{- end }}
{{- define "lxcri.agent.name" -}}lxcri-agent{{- end }}
{{- define "lxcri.operator.name" -}}lxcri-operator{{- end }}

{{- define "lxcri.labels" -}}
app.kubernetes.io/name: lxcri
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "lxcri.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* "<prefix>/runtime": the label the operator sets and the RuntimeClass selects. */}}
{{- define "lxcri.readyLabel" -}}{{ .Values.labelPrefix }}/runtime{{- end }}
