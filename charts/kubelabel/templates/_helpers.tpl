{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "kubelabel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubelabel.fullname" -}}
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

{{- define "kubelabel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubelabel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubelabel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------------- */}}

{{- define "kubelabel.labels" -}}
helm.sh/chart: {{ include "kubelabel.chart" . }}
{{ include "kubelabel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubelabel
{{- end }}

{{- define "kubelabel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubelabel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of a non-operator component: pass (dict "ctx" $ "component" "postgresql"). */}}
{{- define "kubelabel.componentLabels" -}}
helm.sh/chart: {{ include "kubelabel.chart" .ctx }}
{{ include "kubelabel.componentSelectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: kubelabel
{{- end }}

{{- define "kubelabel.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubelabel.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Image -------------------------------------------------------------------------------- */}}

{{- define "kubelabel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Admission webhook ---------------------------------------------------------------------- */}}

{{- define "kubelabel.webhookServiceName" -}}
{{- printf "%s-webhook" (include "kubelabel.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The webhook configurations' name; webhook names get it as a suffix, so it needs a dot. */}}
{{- define "kubelabel.webhookConfigurationName" -}}
{{- default (printf "%s.kubelabel.io" (include "kubelabel.fullname" .)) .Values.webhook.configurationName }}
{{- end }}

{{/* Watch scope -------------------------------------------------------------------------- */}}

{{/* The namespaces the operator watches, as a list; empty means all namespaces. */}}
{{- define "kubelabel.watchNamespaces" -}}
{{- if .Values.watch.namespaces }}
{{- toJson .Values.watch.namespaces }}
{{- else if eq .Values.rbac.scope "namespace" }}
{{- toJson (list .Release.Namespace) }}
{{- else }}
{{- toJson (list) }}
{{- end }}
{{- end }}

{{/* Operator RBAC rules on namespaced objects (used by the ClusterRole or each Role): exactly what the
     operator calls, as manifests/base/rbac.yaml grants (tests/unit/packaging checks they stay equal).
     No delete where owner references let garbage collection do it. */}}
{{- define "kubelabel.operatorNamespacedRules" -}}
# The three kinds: watched, annotated by kopf, status written by the operator.
- apiGroups: ["kubelabel.io"]
  resources: ["labelingprojects", "storageconnections", "mlbackends"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kubelabel.io"]
  resources: ["labelingprojects/status", "storageconnections/status", "mlbackends/status"]
  verbs: ["get", "patch"]
# kopf posts Events for every handler outcome.
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
# Children of a LabelingProject (ConfigMap, admin-token Secret, PVC, Service, Deployment, Ingress),
# of a StorageConnection (Job, CronJob) and of a managed MLBackend (Deployment, Service).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch"]
# list and watch: a change of a Secret a resource names reconciles it at once (rolls its pods).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  # list and patch: a Retain project's volume is found by label and adopted (its metadata only).
  verbs: ["get", "list", "create", "patch", "delete"]
# Pods, listed by label: a sync Job's result is its pod's termination message; a project's or
# managed model's failing pods give the cause its conditions report.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses", "networkpolicies"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
{{- if .Values.leaderElection.enabled }}
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/* Cluster-scoped rights kopf needs in every mode: discover the CRDs (and namespaces when watching
     all of them), keep the admission webhook's configurations. */}}
{{- define "kubelabel.operatorClusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- if not (fromJsonArray (include "kubelabel.watchNamespaces" .)) }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if .Values.webhook.enabled }}
# The admission webhook: Kopf creates its validating (and an empty mutating) configuration if absent,
# then patches only those.
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  verbs: ["create"]
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  resourceNames: [{{ include "kubelabel.webhookConfigurationName" . | quote }}]
  verbs: ["patch"]
{{- end }}
{{- if .Values.leaderElection.enabled }}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}
