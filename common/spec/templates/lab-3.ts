// Template lab-3 (YAML text, comments kept for `kubedos init`).
export const lab3 = `
# Kube'd'OS lab-3: master hub + one control plane (stacked etcd) + one worker,
# sized for a laptop on local QEMU.
apiVersion: kubedos.ca/v1alpha1
kind: Cluster
metadata:
  name: lab-3
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
        cpu: 1
        memoryMiB: 1024
        disks:
          - pool: local
            sizeGiB: 8
        nics:
          - bridge: kubedos0
      - name: cp-1
        role: control-plane
        domain: laptop
        vmid: 3001
        cpu: 2
        memoryMiB: 2048
        disks:
          - pool: local
            sizeGiB: 12
        nics:
          - bridge: kubedos0
      - name: w-1
        role: worker
        domain: laptop
        vmid: 3002
        cpu: 1
        memoryMiB: 1536
        disks:
          - pool: local
            sizeGiB: 10
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
    # Off: kubeadm, kubelet, kubectl and the Cilium images are not in Debian, and this template is
    # meant for a foundry without upstream access. etcd (Debian's etcd-server) still runs stacked
    # on cp-1 and Prometheus on the master. To turn Kubernetes on, declare its sources under
    # spec.sources (pinned definitions: docs/sources/kubernetes.yaml and cilium.yaml).
    enabled: false
    version: "v1.30.x"
    ha:
      controlPlaneReplicas: 1
      etcd: stacked
    cni:
      name: cilium
      hubble: true
    observability:
      prometheus: true
      # Off: Grafana and Loki come from Grafana's apt repository (docs/sources/grafana.yaml).
      grafana: false
      loki: false

  acceptance:
    mttrTargetMinutes: 30
    drills:
      - name: delete-worker-vm
        expectRecoveryMinutes: 15
`;
