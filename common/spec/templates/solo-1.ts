// Template solo-1 (YAML text, comments kept for `kubedos init`).
export const solo1 = `
# Kube'd'OS solo-1: a single hub node with its three planes, hardening and
# observability. Kubernetes needs a control-plane node, so it is off here.
apiVersion: kubedos.ca/v1alpha1
kind: Cluster
metadata:
  name: solo-1
  artifactVersion: "0.1.0"
  intent: laptop-lab
spec:
  substrate:
    type: qemu
    qemu:
      accel: auto
      storagePools:
        - name: local
          type: dir
      bridges:
        - name: kubedos0

  nodes:
    vmidRange: { start: 3000, end: 3099 }
    failureDomains:
      - name: laptop
    inventory:
      - name: master
        role: master
        domain: laptop
        vmid: 3000
        cpu: 2
        memoryMiB: 2048
        disks:
          - pool: local
            sizeGiB: 16
        nics:
          - bridge: kubedos0

  networking:
    lan:
      cidr: 10.110.0.0/20
      active: blue
      hostOffset: 16
    apiVip: 10.110.0.10
    planes:
      wg1:
        cidr: 10.111.0.0/24
        purpose: control
      wg2:
        cidr: 10.112.0.0/24
        purpose: observability
      wg3:
        cidr: 10.113.0.0/24
        purpose: kubernetes-backend
    policy:
      defaultInterPlane: deny
      allow:
        - from: wg1
          to: wg3
          ports: ["6443/tcp", "2379-2380/tcp"]
        - from: wg2
          to: wg3
          ports: ["9100/tcp"]

  security:
    bootstrap:
      model: offline-ca
      caFingerprint: "sha256:REDACTED"
    ssh:
      allowUsers: ["ops"]
      passwordAuth: false
    keyRotation:
      wireguardDays: 30
      kubeCertDays: 90

  storage:
    zfs:
      # Off: OpenZFS is in Debian's contrib component, which the darksite does not carry.
      enabled: false
    ceph:
      enabled: false

  orchestration:
    salt:
      # Off: Salt is not in Debian bookworm; declare docs/sources/salt.yaml to turn it on.
      enabled: false
    ansible:
      enabled: true
      mode: converge

  kubernetes:
    # Off: this template is for a foundry without upstream access, and kubeadm, kubelet, kubectl
    # and the Cilium images are not in Debian (pinned sources: docs/sources/kubernetes.yaml).
    enabled: false
    version: "v1.30.x"
    ha:
      controlPlaneReplicas: 1
      etcd: stacked
    cni:
      name: cilium
      hubble: false
    observability:
      prometheus: false
      # Off: Grafana and Loki come from Grafana's apt repository (docs/sources/grafana.yaml).
      grafana: false
      loki: false

  acceptance:
    mttrTargetMinutes: 30
    drills:
      - name: stop-master-vm
        expectRecoveryMinutes: 15
`;
