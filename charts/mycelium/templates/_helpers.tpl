{{- define "mycelium.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mycelium.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mycelium.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mycelium.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mycelium.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mycelium.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: node
{{- end }}

{{- define "mycelium.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mycelium.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mycelium.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The health/metrics address: loopback unless metrics are scraped from outside the host. */}}
{{- define "mycelium.metricsAddress" -}}
{{- if .Values.metrics.enabled }}
{{- printf "[::]:%v" .Values.health.port }}
{{- else }}
{{- printf "127.0.0.1:%v" .Values.health.port }}
{{- end }}
{{- end }}

{{/* The headless Service the nodes find each other through (a DNS label: 63 bytes at most). */}}
{{- define "mycelium.peersService" -}}
{{- printf "%s-peers" (include "mycelium.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{/* MYCELIUM_PEER_DNS: the peers Service's cluster name, then node.peerDNS.names. */}}
{{- define "mycelium.peerDNS" -}}
{{- $service := printf "%s.%s.svc.%s" (include "mycelium.peersService" .) .Release.Namespace (.Values.node.peerDNS.clusterDomain | trimSuffix ".") }}
{{- prepend .Values.node.peerDNS.names $service | join " " }}
{{- end }}

{{/* The conflist the CNI agent writes: cni.confName, else by mode. */}}
{{- define "mycelium.cniConfName" -}}
{{- .Values.cni.confName | default (eq .Values.cni.mode "chained" | ternary "00-mycelium.conflist" "10-mycelium.conflist") }}
{{- end }}
