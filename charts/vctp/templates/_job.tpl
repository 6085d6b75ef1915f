{{/*
The batch/v1 Job every `vctp job …` runs in (see configmap-job-template.yaml). Secrets and the
settings ConfigMap are referenced by name: the chart creates the ConfigMap, the ServiceAccount
and the RBAC in every watched namespace; the Secrets are yours.
*/}}
{{- define "vctp.jobTemplate" -}}
apiVersion: batch/v1
kind: Job
metadata:
  labels:
    {{- include "vctp.labels" . | nindent 4 }}
    app.kubernetes.io/component: job
spec:
  backoffLimit: {{ .Values.jobs.backoffLimit }}
  ttlSecondsAfterFinished: {{ .Values.jobs.ttlSecondsAfterFinished }}
  {{- if .Values.jobs.activeDeadlineSeconds }}
  activeDeadlineSeconds: {{ .Values.jobs.activeDeadlineSeconds }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "vctp.labels" . | nindent 8 }}
        app.kubernetes.io/component: job
        {{- with .Values.jobs.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.jobs.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "vctp.jobs.serviceAccountName" . }}
      # The job reads its resource and patches its status through the API.
      automountServiceAccountToken: true
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.jobs.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.jobs.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.jobs.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.jobs.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: vctp
          image: {{ include "vctp.jobs.image" . }}
          imagePullPolicy: {{ .Values.jobs.image.pullPolicy | default .Values.image.pullPolicy }}
          # Filled in by the operator, e.g. ["job", "aggregate", "--namespace", "…", "--name", "…"].
          args: []
          env:
            {{- include "vctp.commonEnv" . | nindent 12 }}
            {{- with .Values.jobs.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- if .Values.objectStore.existingSecret }}
          envFrom:
            - secretRef:
                name: {{ .Values.objectStore.existingSecret }}
          {{- end }}
          {{- with .Values.jobs.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          # The tail of the log becomes the container's termination message, which the
          # operator reads from the pod's status: it needs no pods/log access.
          terminationMessagePolicy: FallbackToLogsOnError
          volumeMounts:
            - name: settings
              mountPath: /etc/vctp
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- with .Values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: settings
          configMap:
            name: {{ include "vctp.settingsConfigMapName" . }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ .Values.jobs.tmpSizeLimit }}
        {{- with .Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end }}
