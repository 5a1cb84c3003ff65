// Tiny static programs for the dev node's images: the pod sandbox ("pause") image and a probe image
// used to check that pods run. Standard library only; built with CGO_ENABLED=0.
module mooc-recsys/dev/k8s

go 1.22
