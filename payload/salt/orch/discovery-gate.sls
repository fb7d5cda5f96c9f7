# Master side: `salt-run state.orchestrate orch.discovery-gate`. Passes only when every node of
# the roster (pillar kubedos:roster, rendered from the plan) answers over wg1, applies
# kubedos.discovery, and has published a public key for every plane. Safe to rerun.
{%- set kubedos = salt['pillar.get']('kubedos', {}) %}
{%- set nodes = kubedos.get('roster', {}).keys() | list | sort %}
{%- set planes = kubedos.get('planes', ['wg1', 'wg2', 'wg3']) %}

kubedos-gate-all-minions-answer:
  salt.function:
    - name: test.ping
    - tgt: {{ nodes | join(',') }}
    - tgt_type: list
    - expect_minions: True
    - timeout: {{ kubedos.get('gate_timeout', 120) }}

kubedos-gate-apply-discovery:
  salt.state:
    - tgt: {{ nodes | join(',') }}
    - tgt_type: list
    - sls:
      - kubedos.discovery
    - expect_minions: True
    - require:
      - salt: kubedos-gate-all-minions-answer

{%- for plane in planes %}
kubedos-gate-{{ plane }}-keys-published:
  salt.function:
    - name: cmd.run
    - tgt: {{ nodes | join(',') }}
    - tgt_type: list
    - arg:
      - wg show {{ plane }} public-key
    - kwarg:
        python_shell: False
    - fail_minions: ''
    - expect_minions: True
    - require:
      - salt: kubedos-gate-apply-discovery
{%- endfor %}
