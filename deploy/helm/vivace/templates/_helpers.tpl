{{/* Ports Vivace listens on; the config, the containers and the Services all take them from here. */}}
{{- define "vivace.httpPort" -}}3200{{- end }}
{{- define "vivace.grpcPort" -}}9095{{- end }}
{{- define "vivace.gossipPort" -}}7946{{- end }}
{{/* Where the config ConfigMap is mounted, as a directory (no subPath) so that kubelet updates its files in place. */}}
{{- define "vivace.configDir" -}}/conf{{- end }}
{{/* The data volume's mount: the WAL, the compactor's scratch space and, with the local backend, the blocks. */}}
{{- define "vivace.dataDir" -}}/var/vivace{{- end }}

{{- define "vivace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name, unless fullnameOverride sets it: Services are <release>-distributor and <release>-query-frontend. */}}
{{- define "vivace.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <fullname>-<component>; takes (dict "ctx" $ "component" "distributor"). */}}
{{- define "vivace.resourceName" -}}
{{- printf "%s-%s" (include "vivace.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vivace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Takes (dict "ctx" $ "component" "..."). */}}
{{- define "vivace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vivace.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Takes (dict "ctx" $ "component" "..."). */}}
{{- define "vivace.labels" -}}
helm.sh/chart: {{ include "vivace.chart" .ctx }}
{{ include "vivace.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Pods that gossip carry this label; the gossip-ring Service selects them. */}}
{{- define "vivace.gossipLabel" -}}
vivace/gossip-ring-member: "true"
{{- end }}

{{- define "vivace.image" -}}
{{- $i := .Values.vivace.image -}}
{{- printf "%s/%s:%s" $i.registry $i.repository (toString (default .Chart.AppVersion $i.tag)) }}
{{- end }}

{{- define "vivace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vivace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vivace.distributed" -}}
{{- if eq .Values.mode "distributed" }}true{{ end }}
{{- end }}

{{/* s3 or local: the bundled MinIO implies s3. */}}
{{- define "vivace.backend" -}}
{{- if .Values.minio.enabled }}s3{{ else }}{{ .Values.storage.trace.backend }}{{ end }}
{{- end }}

{{/* The Secret with the S3 keys as (dict "name" "accessKey" "secretKey"), or empty when credentials come from elsewhere (IAM role). */}}
{{- define "vivace.s3Secret" -}}
{{- $s3 := .Values.storage.trace.s3 -}}
{{- if .Values.minio.enabled }}
{{- toYaml (dict "name" (include "vivace.resourceName" (dict "ctx" . "component" "minio")) "accessKey" "rootUser" "secretKey" "rootPassword") }}
{{- else if ne (include "vivace.backend" .) "s3" }}
{{- else if $s3.existingSecret }}
{{- toYaml (dict "name" $s3.existingSecret "accessKey" $s3.existingSecretKeys.accessKey "secretKey" $s3.existingSecretKeys.secretKey) }}
{{- else if $s3.access_key }}
{{- toYaml (dict "name" (include "vivace.resourceName" (dict "ctx" . "component" "s3")) "accessKey" "access_key" "secretKey" "secret_key") }}
{{- end }}
{{- end }}

{{/* The receivers that are on: name (the port's name), port, protocol and their place in the config. */}}
{{- define "vivace.receivers" -}}
{{- $t := .Values.traces -}}
{{- $all := list
  (dict "on" $t.otlp.grpc.enabled "name" "otlp-grpc" "port" 4317 "protocol" "TCP" "path" (list "otlp" "protocols" "grpc") "extra" $t.otlp.grpc.receiverConfig)
  (dict "on" $t.otlp.http.enabled "name" "otlp-http" "port" 4318 "protocol" "TCP" "path" (list "otlp" "protocols" "http") "extra" $t.otlp.http.receiverConfig)
  (dict "on" $t.zipkin.enabled "name" "zipkin" "port" 9411 "protocol" "TCP" "path" (list "zipkin") "extra" $t.zipkin.receiverConfig)
  (dict "on" $t.jaeger.thriftHttp.enabled "name" "jaeger-http" "port" 14268 "protocol" "TCP" "path" (list "jaeger" "protocols" "thrift_http") "extra" $t.jaeger.thriftHttp.receiverConfig)
  (dict "on" $t.jaeger.grpc.enabled "name" "jaeger-grpc" "port" 14250 "protocol" "TCP" "path" (list "jaeger" "protocols" "grpc") "extra" $t.jaeger.grpc.receiverConfig)
  (dict "on" $t.jaeger.thriftCompact.enabled "name" "jaeger-compact" "port" 6831 "protocol" "UDP" "path" (list "jaeger" "protocols" "thrift_compact") "extra" $t.jaeger.thriftCompact.receiverConfig)
  (dict "on" $t.jaeger.thriftBinary.enabled "name" "jaeger-binary" "port" 6832 "protocol" "UDP" "path" (list "jaeger" "protocols" "thrift_binary") "extra" $t.jaeger.thriftBinary.receiverConfig)
  (dict "on" $t.opencensus.enabled "name" "opencensus" "port" 55678 "protocol" "TCP" "path" (list "opencensus") "extra" $t.opencensus.receiverConfig)
  (dict "on" $t.datadog.enabled "name" "datadog" "port" 8126 "protocol" "TCP" "path" (list "datadog") "extra" $t.datadog.receiverConfig)
-}}
{{- $on := list -}}
{{- range $all }}
{{- if .on }}{{ $on = append $on (omit . "on") }}{{ end }}
{{- end }}
{{- toYaml (dict "receivers" $on) }}
{{- end }}

{{/* Fails the render on values that cannot work. */}}
{{- define "vivace.validate" -}}
{{- $s3 := .Values.storage.trace.s3 -}}
{{- if not (has .Values.mode (list "monolithic" "distributed")) }}
{{- fail (printf "mode %q: want monolithic or distributed" .Values.mode) }}
{{- end }}
{{- $backend := include "vivace.backend" . -}}
{{- if not (has $backend (list "local" "s3")) }}
{{- fail (printf "storage.trace.backend %q: want local or s3" $backend) }}
{{- end }}
{{- if and (include "vivace.distributed" .) (eq $backend "local") }}
{{- fail "mode=distributed needs object storage that every pod shares: set storage.trace.backend=s3 with storage.trace.s3.bucket and endpoint, or minio.enabled=true" }}
{{- end }}
{{- if and (eq $backend "s3") (not .Values.minio.enabled) (or (not $s3.bucket) (not $s3.endpoint)) }}
{{- fail "storage.trace.backend=s3 needs storage.trace.s3.bucket and storage.trace.s3.endpoint" }}
{{- end }}
{{- if and (not $s3.existingSecret) (ne (empty $s3.access_key) (empty $s3.secret_key)) }}
{{- fail "storage.trace.s3.access_key and secret_key go together" }}
{{- end }}
{{- if not (include "vivace.receivers" . | fromYaml).receivers }}
{{- fail "no receiver is enabled: enable at least one under traces" }}
{{- end }}
{{- end }}

{{/* The Vivace config: rendered from the values, then vivace.structuredConfig merged over it. */}}
{{- define "vivace.config" -}}
{{- $distributed := include "vivace.distributed" . -}}
{{- $backend := include "vivace.backend" . -}}
{{- $dataDir := include "vivace.dataDir" . -}}
{{- $ns := .Release.Namespace -}}
{{- $domain := .Values.global.clusterDomain -}}
{{- $receivers := dict -}}
{{- range (include "vivace.receivers" . | fromYaml).receivers }}
{{- $cfg := mergeOverwrite (dict "endpoint" (printf "0.0.0.0:%v" .port)) (deepCopy (.extra | default dict)) }}
{{- $node := $receivers }}
{{- $last := last .path }}
{{- range initial .path }}
{{- if not (hasKey $node .) }}{{ $_ := set $node . dict }}{{ end }}
{{- $node = get $node . }}
{{- end }}
{{- $_ := set $node $last $cfg }}
{{- end }}
{{- $s3 := .Values.storage.trace.s3 -}}
{{- $cfg := dict
  "multitenancy_enabled" .Values.multitenancyEnabled
  "server" (dict
    "http_listen_port" (include "vivace.httpPort" . | int)
    "grpc_listen_port" (include "vivace.grpcPort" . | int)
    "log_level" .Values.server.logLevel
    "log_format" .Values.server.logFormat)
  "distributor" (dict
    "receivers" $receivers
    "log_received_spans" .Values.distributor.config.log_received_spans)
  "ingester" (dict
    "lifecycler" (dict
      "id" "${POD_NAME}"
      "ring" (dict "replication_factor" (ternary (.Values.ingester.config.replication_factor | int) 1 (not (empty $distributed))))))
  "compactor" (dict
    "compaction" (dict "block_retention" .Values.compactor.config.compaction.block_retention))
  "overrides" (dict
    "defaults" (deepCopy (.Values.overrides.defaults | default dict))
    "per_tenant_override_config" (printf "%s/overrides.yaml" (include "vivace.configDir" .)))
  "storage" (dict
    "trace" (dict
      "backend" $backend
      "wal" (dict "path" (printf "%s/wal" $dataDir))))
-}}
{{- if $distributed }}
{{- $_ := set $cfg.ingester.lifecycler "min_ready_duration" .Values.ingester.config.min_ready_duration }}
{{- $_ := set $cfg "memberlist" (dict
  "cluster_label" (printf "%s.%s" (include "vivace.fullname" .) $ns)
  "bind_port" (include "vivace.gossipPort" . | int)
  "join_members" (list (printf "dns+%s.%s.svc.%s:%s" (include "vivace.resourceName" (dict "ctx" . "component" "gossip-ring")) $ns $domain (include "vivace.gossipPort" .)))) }}
{{- $_ := set $cfg "querier" (dict "frontend_worker" (dict
  "frontend_address" (printf "%s.%s.svc.%s:%s" (include "vivace.resourceName" (dict "ctx" . "component" "query-frontend-discovery")) $ns $domain (include "vivace.grpcPort" .)))) }}
{{- end }}
{{- if eq $backend "local" }}
{{- $_ := set $cfg.storage.trace "local" (dict "path" (printf "%s/traces" $dataDir)) }}
{{- else if .Values.minio.enabled }}
{{- $_ := set $cfg.storage.trace "s3" (dict
  "bucket" .Values.minio.bucket
  "endpoint" (printf "%s.%s.svc.%s:9000" (include "vivace.resourceName" (dict "ctx" . "component" "minio")) $ns $domain)
  "insecure" true) }}
{{- else }}
{{- $_ := set $cfg.storage.trace "s3" (dict "bucket" $s3.bucket "endpoint" $s3.endpoint "insecure" $s3.insecure) }}
{{- if $s3.region }}{{ $_ := set $cfg.storage.trace.s3 "region" $s3.region }}{{ end }}
{{- end }}
{{- if include "vivace.s3Secret" . }}
{{- $_ := set $cfg.storage.trace.s3 "access_key" "${S3_ACCESS_KEY}" }}
{{- $_ := set $cfg.storage.trace.s3 "secret_key" "${S3_SECRET_KEY}" }}
{{- end }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy .Values.vivace.structuredConfig) }}
{{- /* ${VAR} is replaced as text before the YAML is parsed: single quotes keep a key with ': ' or ' #' in it one string. */}}
{{- toYaml $cfg | replace "${S3_ACCESS_KEY}" "'${S3_ACCESS_KEY}'" | replace "${S3_SECRET_KEY}" "'${S3_SECRET_KEY}'" }}
{{- end }}

{{/*
A Vivace pod template. Takes (dict "ctx" $ "component" "ingester" "target" "ingester"
"values" .Values.ingester "gossip" true "receivers" false "dataClaim" true); with dataClaim
the data volume comes from the StatefulSet's volumeClaimTemplates, else it is an emptyDir.
*/}}
{{- define "vivace.podTemplate" -}}
{{- $conf := include "vivace.configDir" .ctx -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
{{- $vv := $ctx.Values.vivace -}}
metadata:
  labels:
    {{- include "vivace.selectorLabels" . | nindent 4 }}
    {{- if .gossip }}
    {{- include "vivace.gossipLabel" $ctx | nindent 4 }}
    {{- end }}
    {{- with $vv.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* vivace.yaml only: overrides.yaml (overrides.perTenant) is reloaded in place, without rolling the pods. */}}
    checksum/config: {{ include "vivace.config" $ctx | sha256sum }}
    {{- if $ctx.Values.metaMonitoring.prometheusAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ include "vivace.httpPort" $ctx | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $vv.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "vivace.serviceAccountName" $ctx }}
  {{- with $vv.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $vv.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  containers:
    - name: vivace
      image: {{ include "vivace.image" $ctx }}
      imagePullPolicy: {{ $vv.image.pullPolicy }}
      args:
        - -config.file={{ $conf }}/vivace.yaml
        - -config.expand-env=true
        - -target={{ .target }}
        {{- range $vv.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- with include "vivace.s3Secret" $ctx | fromYaml }}
        - name: S3_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .name }}
              key: {{ .accessKey }}
        - name: S3_SECRET_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .name }}
              key: {{ .secretKey }}
        {{- end }}
        {{- with $vv.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http-metrics
          containerPort: {{ include "vivace.httpPort" $ctx }}
          protocol: TCP
        - name: grpc
          containerPort: {{ include "vivace.grpcPort" $ctx }}
          protocol: TCP
        {{- if .gossip }}
        - name: http-memberlist
          containerPort: {{ include "vivace.gossipPort" $ctx }}
          protocol: TCP
        {{- end }}
        {{- if .receivers }}
        {{- range (include "vivace.receivers" $ctx | fromYaml).receivers }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: {{ .protocol }}
        {{- end }}
        {{- end }}
      readinessProbe:
        {{- toYaml $vv.readinessProbe | nindent 8 }}
      {{- if $v.livenessProbe.enabled }}
      livenessProbe:
        {{- toYaml $vv.livenessProbe | nindent 8 }}
      {{- end }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $vv.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ $conf }}
          readOnly: true
        - name: data
          mountPath: {{ include "vivace.dataDir" $ctx }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "vivace.resourceName" (dict "ctx" $ctx "component" "config") }}
    - name: tmp
      emptyDir: {}
    {{- if not .dataClaim }}
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* A StatefulSet's volumeClaimTemplates for the data volume; takes the role's persistence values. */}}
{{- define "vivace.dataClaim" -}}
- metadata:
    name: data
  spec:
    accessModes:
      {{- toYaml .accessModes | nindent 6 }}
    {{- with .storageClass }}
    storageClassName: {{ if eq . "-" }}""{{ else }}{{ . }}{{ end }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size }}
{{- end }}
