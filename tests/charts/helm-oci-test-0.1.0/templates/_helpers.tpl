{{- define "helm-oci-test.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end }}
