// Template reference-16 (YAML text, comments kept for `kubedos init`).
export const reference16 = `
# Kube'd'OS reference-16: the original deploy.sh topology (seed 001).
# 4 platform nodes (master hub, prometheus, grafana, storage) and the Kubernetes HA core
# "3x3x3x3": external etcd, control planes, workers and load balancers holding the API VIP.
apiVersion: kubedos.ca/v1alpha1
kind: Cluster
metadata:
  name: reference-16
  artifactVersion: "0.1.0"
  intent: reproducible-platform
spec:
  substrate:
    type: proxmox
    proxmox:
      clusterName: pve-01
      # host: pve1   # the ~/.ssh/config Host alias of your Proxmox node, or: --target proxmox://HOST
      storagePools:
        - name: fast-zfs
          type: zfspool
      isoStorage: local
      bridges:
        - name: vmbr0
          vlanAware: true
          trunks: [10, 20, 30]
      tags:
        - reference

  nodes:
    vmidRange: { start: 2000, end: 2099 }
    failureDomains:
      - name: rack-a
      - name: rack-b
      - name: rack-c
    inventory:
      - name: master
        role: master
        domain: rack-a
        vmid: 2000
        cpu: 4
        memoryMiB: 8192
        disks:
          - pool: fast-zfs
            sizeGiB: 64
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: prometheus
        role: prometheus
        domain: rack-a
        vmid: 2001
        cpu: 2
        memoryMiB: 4096
        disks:
          - pool: fast-zfs
            sizeGiB: 64
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: grafana
        role: grafana
        domain: rack-b
        vmid: 2002
        cpu: 2
        memoryMiB: 4096
        disks:
          - pool: fast-zfs
            sizeGiB: 32
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: storage
        role: storage
        domain: rack-c
        vmid: 2003
        cpu: 4
        memoryMiB: 8192
        disks:
          - pool: fast-zfs
            sizeGiB: 256
          # Data disk: the ZFS pool of storage.zfs.pools is created on it.
          - pool: fast-zfs
            sizeGiB: 512
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: etcd-1
        role: etcd
        domain: rack-a
        vmid: 2004
        cpu: 2
        memoryMiB: 4096
        disks:
          - pool: fast-zfs
            sizeGiB: 32
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: etcd-2
        role: etcd
        domain: rack-b
        vmid: 2005
        cpu: 2
        memoryMiB: 4096
        disks:
          - pool: fast-zfs
            sizeGiB: 32
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: etcd-3
        role: etcd
        domain: rack-c
        vmid: 2006
        cpu: 2
        memoryMiB: 4096
        disks:
          - pool: fast-zfs
            sizeGiB: 32
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: cp-1
        role: control-plane
        domain: rack-a
        vmid: 2007
        cpu: 4
        memoryMiB: 8192
        disks:
          - pool: fast-zfs
            sizeGiB: 64
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: cp-2
        role: control-plane
        domain: rack-b
        vmid: 2008
        cpu: 4
        memoryMiB: 8192
        disks:
          - pool: fast-zfs
            sizeGiB: 64
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: cp-3
        role: control-plane
        domain: rack-c
        vmid: 2009
        cpu: 4
        memoryMiB: 8192
        disks:
          - pool: fast-zfs
            sizeGiB: 64
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: w-1
        role: worker
        domain: rack-a
        vmid: 2010
        cpu: 8
        memoryMiB: 16384
        disks:
          - pool: fast-zfs
            sizeGiB: 128
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: w-2
        role: worker
        domain: rack-b
        vmid: 2011
        cpu: 8
        memoryMiB: 16384
        disks:
          - pool: fast-zfs
            sizeGiB: 128
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: w-3
        role: worker
        domain: rack-c
        vmid: 2012
        cpu: 8
        memoryMiB: 16384
        disks:
          - pool: fast-zfs
            sizeGiB: 128
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: lb-1
        role: lb
        domain: rack-a
        vmid: 2013
        cpu: 2
        memoryMiB: 2048
        disks:
          - pool: fast-zfs
            sizeGiB: 16
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: lb-2
        role: lb
        domain: rack-b
        vmid: 2014
        cpu: 2
        memoryMiB: 2048
        disks:
          - pool: fast-zfs
            sizeGiB: 16
        nics:
          - bridge: vmbr0
            vlan: 10
      - name: lb-3
        role: lb
        domain: rack-c
        vmid: 2015
        cpu: 2
        memoryMiB: 2048
        disks:
          - pool: fast-zfs
            sizeGiB: 16
        nics:
          - bridge: vmbr0
            vlan: 10

  networking:
    # /20 LAN: 10.100.0.0/21 is blue (8x/24), 10.100.8.0/21 is green (8x/24).
    lan:
      cidr: 10.100.0.0/20
      gateway: 10.100.0.1
      active: blue
      hostOffset: 16
    apiVip: 10.100.0.10
    planes:
      wg1:
        cidr: 10.101.0.0/24
        purpose: control
        listenPort: 51821
      wg2:
        cidr: 10.102.0.0/24
        purpose: observability
        listenPort: 51822
      wg3:
        cidr: 10.103.0.0/24
        purpose: kubernetes-backend
        listenPort: 51823
    policy:
      defaultInterPlane: deny
      allow:
        - from: wg1
          to: wg3
          ports: ["6443/tcp", "2379-2380/tcp"]
          description: administration reaches the API servers and etcd
        - from: wg2
          to: wg3
          ports: ["9100/tcp", "10250/tcp"]
          description: prometheus scrapes node exporters and kubelets

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
    enrollment:
      windowMinutes: 30
      port: 8443
      tokenTtlMinutes: 60

  storage:
    zfs:
      enabled: true
      pools: ["fast-zfs"]
    ceph:
      enabled: false

  orchestration:
    salt:
      enabled: true
      enrollment: token+pin
    ansible:
      enabled: true
      mode: converge

  kubernetes:
    enabled: true
    version: "v1.30.x"
    ha:
      controlPlaneReplicas: 3
      etcd: external
      upgradeStrategy: replace
    cni:
      name: cilium
      hubble: true
      datapath: native-routing
      policyDefault: default-deny
    observability:
      prometheus: true
      grafana: true
      loki: true
      plane: wg2

  acceptance:
    mttrTargetMinutes: 30
    drills:
      - name: delete-worker-vm
        expectRecoveryMinutes: 10
      - name: delete-control-plane-vm
        expectRecoveryMinutes: 20

  selfHealing:
    detect:
      heartbeatSeconds: 10
      missedHeartbeats: 6
      signals: [guest-agent, wg-handshake, kubelet-ready]
    fence:
      after: detect
      actions: [cordon, drain, remove-etcd-member, revoke-plane-peers, stop-vm]
      drainTimeoutSeconds: 300
    replace:
      automatic: false
      maxConcurrent: 1

  stages:
    provision:
      allowDestroy: false
`;
