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

{{/* The agent's RBAC and ServiceAccount outlive a deletion of the release until the agents have
uninstalled (agent/lxcri_agent/release.py takes it off): an agent needs them to read its
DaemonSet and take the labels off its Node at SIGTERM. */}}
{{- define "lxcri.agent.finalizers" -}}
finalizers:
  - lxcri.linuxcontainers.org/agent-cleanup
{{- end }}
