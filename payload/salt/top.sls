# Salt's part in Kube'd'OS is the discovery gate (seed 001: "an early convergence/discovery
# gate"): every planned node's minion registers over wg1 and publishes what later stages need,
# then orch.discovery-gate on the master passes only when the whole roster answered.
base:
  '*':
    - kubedos.discovery
