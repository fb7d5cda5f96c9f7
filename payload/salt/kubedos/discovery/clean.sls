# Undo kubedos.discovery on a minion (every Salt apply has a clean). Destructive only to the
# files this state owns.
{%- from "kubedos/discovery/map.jinja" import discovery with context %}

kubedos-discovery-clean-marker:
  file.absent:
    - name: {{ discovery.state_dir }}

kubedos-discovery-clean-mine:
  file.absent:
    - name: /etc/salt/minion.d/kubedos-mine.conf

kubedos-discovery-clean-grains:
  grains.absent:
    - names:
      - kubedos_cluster
      - kubedos_discovered
