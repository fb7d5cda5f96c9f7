# Minion side of the discovery gate. Safe to rerun: it only (re)writes files it owns and the
# mine functions; it never touches the planes (those are the backplane payload's job).
{%- from "kubedos/discovery/map.jinja" import discovery with context %}

kubedos-discovery-state-dir:
  file.directory:
    - name: {{ discovery.state_dir }}
    - mode: '0755'
    - makedirs: True

kubedos-discovery-grains:
  grains.present:
    - names:
      - kubedos_cluster:
        - value: {{ discovery.cluster | json }}
      - kubedos_discovered:
        - value: True

# What the master collects with mine.get: plane addresses and WireGuard PUBLIC keys only.
kubedos-discovery-mine:
  file.managed:
    - name: /etc/salt/minion.d/kubedos-mine.conf
    - mode: '0644'
    - contents: |
        mine_interval: 5
        mine_functions:
{%- for plane in discovery.planes %}
          kubedos_{{ plane }}_addr:
            mine_function: network.ip_addrs
            interface: {{ plane }}
          kubedos_{{ plane }}_pubkey:
            mine_function: cmd.run
            cmd: wg show {{ plane }} public-key
            python_shell: False
{%- endfor %}

kubedos-discovery-mine-update:
  module.run:
    - mine.update: []
    - onchanges:
      - file: kubedos-discovery-mine

kubedos-discovery-marker:
  file.managed:
    - name: {{ discovery.state_dir }}/registered
    - mode: '0644'
    - contents: |
        cluster={{ discovery.cluster }}
        minion={{ grains['id'] }}
    - require:
      - file: kubedos-discovery-state-dir
