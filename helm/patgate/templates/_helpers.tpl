{{/*
Names, labels and the checks every template relies on.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "patgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full resource name: fullnameOverride, else <release>-<name> (just <release> when it already holds the name). */}}
{{- define "patgate.fullname" -}}
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

{{/* chart label value: name-version. */}}
{{- define "patgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "patgate.labels" -}}
helm.sh/chart: {{ include "patgate.chart" . }}
{{ include "patgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods (immutable in a Deployment: never add to them). */}}
{{- define "patgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "patgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "patgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "patgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "patgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when a shared Redis store is configured, else empty. */}}
{{- define "patgate.redisEnabled" -}}
{{- if .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{/* "true" when the metrics port is separate from the gateway port, else empty. */}}
{{- define "patgate.metricsSeparatePort" -}}
{{- if and .Values.metrics.enabled (ne (int .Values.metrics.port) (int .Values.server.port)) }}true{{ end }}
{{- end }}

{{/*
PATGATE_PUBLIC_URL: ui.publicUrl, else the first Ingress host under
ui.pathPrefix (https when the Ingress has TLS), else empty (the gateway then
goes by each request's Host).
*/}}
{{- define "patgate.publicUrl" -}}
{{- if .Values.ui.publicUrl }}
{{- trimSuffix "/" .Values.ui.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- printf "%s://%s%s" (ternary "https" "http" (not (empty .Values.ingress.tls))) (index .Values.ingress.hosts 0).host .Values.ui.pathPrefix }}
{{- end }}
{{- end }}

{{/* The text of routes.yaml: config.routesYaml, else the chart's copy of the repository's routes.yaml. */}}
{{- define "patgate.routesYaml" -}}
{{- if .Values.config.routesYaml }}
{{- .Values.config.routesYaml }}
{{- else }}
{{- .Files.Get "files/routes.yaml" }}
{{- end }}
{{- end }}

{{/*
The text of patgate.yaml: config.patgateYaml, else the chart's copy of the
repository's config/patgate.yaml. With config.overrides it is parsed, merged
and re-serialised (comments are lost then; without overrides the file is kept
byte for byte).
*/}}
{{- define "patgate.configYaml" -}}
{{- $text := .Values.config.patgateYaml | default (.Files.Get "files/patgate.yaml") }}
{{- if .Values.config.overrides }}
{{- $cfg := fromYaml $text }}
{{- if hasKey $cfg "Error" }}
{{- fail (printf "patgate: config.patgateYaml is not valid YAML: %s" (get $cfg "Error")) }}
{{- end }}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.config.overrides)) }}
{{- else }}
{{- $text }}
{{- end }}
{{- end }}

{{/*
Refuses to render a release that cannot work, with a message that says why.
Included by the Deployment.
*/}}
{{- define "patgate.validate" -}}
{{- $redis := include "patgate.redisEnabled" . }}
{{- if and (not $redis) (gt (int .Values.replicaCount) 1) }}
{{- fail "patgate: replicaCount > 1 needs Redis: the embedded store is a database on one pod's volume, which pods cannot share. Set redis.existingSecret (a Secret holding the redis:// URL), or keep replicaCount: 1." }}
{{- end }}
{{- if and (not $redis) .Values.autoscaling.enabled }}
{{- fail "patgate: autoscaling.enabled needs Redis: the embedded store is a database on one pod's volume, which pods cannot share. Set redis.existingSecret (a Secret holding the redis:// URL), or turn autoscaling off." }}
{{- end }}
{{- if and $redis (not .Values.pepper.existingSecret) }}
{{- fail "patgate: Redis needs a pepper shared by every replica. Create one (kubectl create secret generic patgate-pepper --from-literal=pepper=$(openssl rand -hex 32)) and set pepper.existingSecret." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "patgate: autoscaling.minReplicas is greater than autoscaling.maxReplicas." }}
{{- end }}
{{- $stop := add (int .Values.shutdown.preStopSleepSeconds) (int .Values.shutdown.drainTimeoutSeconds) }}
{{- if le (int .Values.terminationGracePeriodSeconds) $stop }}
{{- fail (printf "patgate: terminationGracePeriodSeconds (%d) must exceed shutdown.preStopSleepSeconds + shutdown.drainTimeoutSeconds (%d), or Kubernetes kills the pod before its streams have drained." (int .Values.terminationGracePeriodSeconds) $stop) }}
{{- end }}
{{- if and (not (include "patgate.metricsSeparatePort" .)) (eq .Values.probes.port "metrics") }}
{{- fail "patgate: probes.port is \"metrics\" but no separate metrics port is declared (metrics.enabled with a metrics.port other than server.port)." }}
{{- end }}
{{- if and .Values.oidc.client.existingSecret (not .Values.oidc.issuer) }}
{{- fail "patgate: oidc.client.existingSecret needs oidc.issuer (and oidc.audience, oidc.jwksUrl): the page signs users in at that issuer." }}
{{- end }}
{{- if ne (empty .Values.oidc.operatorClaim) (empty .Values.oidc.operatorValue) }}
{{- fail "patgate: oidc.operatorClaim and oidc.operatorValue go together (e.g. groups and patgate-operators): with only one, nobody, or anyone with the claim, would be an operator." }}
{{- end }}
{{- if and .Values.oidc.operatorClaim (not .Values.oidc.issuer) }}
{{- fail "patgate: oidc.operatorClaim needs oidc.issuer: the claim is read from its tokens." }}
{{- end }}
{{- if and .Values.ui.publicUrl .Values.ui.pathPrefix (not (hasSuffix .Values.ui.pathPrefix (trimSuffix "/" .Values.ui.publicUrl))) }}
{{- fail (printf "patgate: ui.publicUrl (%s) must end with ui.pathPrefix (%s): it is where browsers reach the gateway, prefix included." .Values.ui.publicUrl .Values.ui.pathPrefix) }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "patgate: tls.enabled needs tls.existingSecret, a kubernetes.io/tls Secret holding tls.crt and tls.key (e.g. kubectl create secret tls patgate-tls --cert=tls.crt --key=tls.key)." }}
{{- end }}
{{- if and .Values.tls.enabled (ne .Values.tls.clientAuth "none") (not .Values.tls.clientCaSecret) }}
{{- fail "patgate: tls.clientAuth optional or require needs tls.clientCaSecret, a Secret holding the CA client certificates must chain to." }}
{{- end }}
{{- if and .Values.tls.enabled (hasPrefix (printf "%s/" (trimSuffix "/" .Values.config.mountPath)) (printf "%s/" (trimSuffix "/" .Values.tls.mountPath))) }}
{{- fail "patgate: tls.mountPath must not be inside config.mountPath (the ConfigMap's read-only directory)." }}
{{- end }}
{{- $cfg := fromYaml (include "patgate.configYaml" .) }}
{{- if hasKey $cfg "Error" }}
{{- fail (printf "patgate: patgate.yaml is not valid YAML: %s" (get $cfg "Error")) }}
{{- end }}
{{- $routesFile := toString (get $cfg "routes_file") }}
{{- if not (has $routesFile (list "routes.yaml" "./routes.yaml" (printf "%s/routes.yaml" (trimSuffix "/" .Values.config.mountPath)))) }}
{{- fail (printf "patgate: patgate.yaml must say routes_file: routes.yaml (the route table mounted next to it from the ConfigMap), not %q." $routesFile) }}
{{- end }}
{{- $routes := fromYaml (include "patgate.routesYaml" .) }}
{{- if or (hasKey $routes "Error") (not (hasKey $routes "routes")) }}
{{- fail "patgate: routes.yaml is not a route table (no `routes:` list); see docs/routes.md." }}
{{- end }}
{{- end }}
