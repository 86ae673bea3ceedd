#!/usr/bin/env bash
# facts.sh: describe this host as ONE JSON object on stdout. Changes nothing.
#
# Inputs: none (JHUB_ROOT, when set, is where /etc/os-release, /proc/meminfo, /sys and
#   /var/lib/jhub are read from; nvidia-smi and lspci are then skipped, since they read the live host).
# stdin: not read.
# stdout: {"hostname", "os": {"id", "version"}, "kernel", "arch", "cpus", "memoryBytes",
#   "disk": [{"path", "checkedPath", "mount", "freeBytes"}],
#   "gpus": [{"index", "model", "memoryMiB", "driver" (NVIDIA driver version), "kernelModule" (nvidia,
#            nouveau, vfio-pci...: the PCI device's bound driver), "pciAddress"}],
#   "infiniband": [{"device", "port", "state", "rate", "linkLayer", "netdevs": [..]}],
#   "addresses": [{"interface", "family", "address", "prefixLength"}], "defaultRouteAddress",
#   "microk8s": {"installed", "version", "revision", "channel", "running", "clustered", "role",
#                "held", "clusterId"}}
#   Unknown values are null; lists are sorted so the same host gives the same bytes.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# os_field KEY: a value from /etc/os-release, unquoted
os_field() {
  local line v f
  f="$(rootp /etc/os-release)"
  [ -r "$f" ] || return 0
  while IFS= read -r line; do
    case "$line" in
    "$1="*)
      v="${line#*=}"
      v="${v#\"}" v="${v%\"}" v="${v#\'}" v="${v%\'}"
      printf '%s' "$v"
      return 0
      ;;
    esac
  done <"$f"
}

memory_bytes() {
  local kb
  kb="$(awk '$1 == "MemTotal:" { print $2 }' "$(rootp /proc/meminfo)" 2>/dev/null || true)"
  if is_uint "$kb"; then printf '%s' "$((kb * 1024))"; fi
}

# disk_json: free space where snaps (/var/lib/snapd, /var/snap) and jhub's bundle (/var/lib/jhub) go,
# measured at the nearest existing parent
disk_json() {
  local p q free mount items=()
  for p in /var/lib/snapd /var/snap /var/lib/jhub; do
    q="$(rootp "$p")"
    while [ ! -e "$q" ] && [ "$q" != / ] && [ -n "$q" ]; do q="$(dirname -- "$q")"; done
    [ -n "$q" ] || q=/
    free="$(df -B1 --output=avail "$q" 2>/dev/null | tail -n 1 | tr -d ' ')" || free=""
    mount="$(df --output=target "$q" 2>/dev/null | tail -n 1)" || mount=""
    items+=("{\"path\":$(json_str "$p"),\"checkedPath\":$(json_str "$(unrootp "$q")"),\"mount\":$(json_str_or_null "$mount"),\"freeBytes\":$(json_num "$free")}")
  done
  printf '[%s]' "$(json_join "${items[@]}")"
}

# gpu_item INDEX MODEL MEMORY_MIB DRIVER_VERSION KERNEL_MODULE PCI
gpu_item() {
  printf '{"index":%s,"model":%s,"memoryMiB":%s,"driver":%s,"kernelModule":%s,"pciAddress":%s}' \
    "$(json_num "$1")" "$(json_str_or_null "$2")" "$(json_num "$3")" "$(json_str_or_null "$4")" \
    "$(json_str_or_null "$5")" "$(json_str_or_null "$6")"
}

# the loaded NVIDIA kernel driver's version, when the device is bound to it
nvidia_version() {
  if [ "$1" = nvidia ] && [ -r "$(rootp /sys/module/nvidia/version)" ]; then cat "$(rootp /sys/module/nvidia/version)"; fi
}

# GPUs from nvidia-smi: model, memory and driver version
gpus_nvidia_smi() {
  local out idx name mem drv bus items=()
  live && command -v nvidia-smi >/dev/null 2>&1 || return 1
  out="$(timeout 30 nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id \
    --format=csv,noheader,nounits 2>/dev/null)" || return 1
  [ -n "$out" ] || return 1
  while IFS=, read -r idx name mem drv bus; do
    idx="${idx// /}" mem="${mem// /}" drv="${drv// /}" bus="${bus// /}"
    name="${name# }" name="${name% }"
    items+=("$(gpu_item "$idx" "$name" "$mem" "$drv" nvidia "$bus")")
  done <<<"$out"
  printf '[%s]' "$(json_join "${items[@]}")"
}

# pci_driver ADDRESS: the kernel driver bound to a PCI device (nvidia, nouveau, vfio-pci...)
pci_driver() {
  local link
  link="$(rootp "/sys/bus/pci/devices/$1/driver")"
  if [ -L "$link" ]; then basename -- "$(readlink "$link")"; fi
}

# NVIDIA display/3D controllers from lspci: model name only (no driver loaded to ask)
gpus_lspci() {
  local key val slot="" class="" device="" i=0 items=() mod
  live && command -v lspci >/dev/null 2>&1 || return 1
  flush() {
    if [[ "$class" == *"[0300]"* || "$class" == *"[0302]"* ]]; then
      mod="$(pci_driver "$slot")"
      items+=("$(gpu_item "$i" "NVIDIA ${device% \[*\]}" "" "$(nvidia_version "$mod")" "$mod" "$slot")")
      i=$((i + 1))
    fi
    slot="" class="" device=""
  }
  while IFS=$'\t' read -r key val; do
    case "$key" in
    Slot:) slot="$val" ;;
    Class:) class="$val" ;;
    Device:) device="$val" ;;
    "") flush ;;
    esac
  done < <(timeout 30 lspci -D -vmm -nn -d 10de: 2>/dev/null; echo)
  flush
  [ "${#items[@]}" -gt 0 ] || return 1
  printf '[%s]' "$(json_join "${items[@]}")"
}

# NVIDIA display/3D controllers from sysfs: PCI ids only
gpus_sysfs() {
  local d i=0 items=() class mod
  for d in "$(rootp /sys/bus/pci/devices)"/*; do
    [ -r "$d/vendor" ] && [ "$(cat "$d/vendor")" = 0x10de ] || continue
    class="$(cat "$d/class" 2>/dev/null || true)"
    [[ "$class" == 0x0300* || "$class" == 0x0302* ]] || continue
    mod="$(pci_driver "$(basename -- "$d")")"
    items+=("$(gpu_item "$i" "NVIDIA [10de:$(sed 's/^0x//' "$d/device")]" "" "$(nvidia_version "$mod")" \
      "$mod" "$(basename -- "$d")")")
    i=$((i + 1))
  done
  printf '[%s]' "$(json_join "${items[@]}")"
}

gpus_json() { gpus_nvidia_smi || gpus_lspci || gpus_sysfs; }

# InfiniBand (and RoCE) ports from /sys/class/infiniband
infiniband_json() {
  local dev port state rate ll nd netdevs items=()
  for dev in "$(rootp /sys/class/infiniband)"/*; do
    [ -d "$dev/ports" ] || continue
    netdevs=()
    for nd in "$dev"/device/net/*; do
      [ -e "$nd" ] && netdevs+=("$(json_str "$(basename -- "$nd")")")
    done
    for port in "$dev"/ports/*; do
      [ -d "$port" ] || continue
      state="$(cat "$port/state" 2>/dev/null || true)"   # "4: ACTIVE"
      state="${state#*: }"
      rate="$(cat "$port/rate" 2>/dev/null || true)"     # "100 Gb/sec (4X EDR)"
      ll="$(cat "$port/link_layer" 2>/dev/null || true)" # "InfiniBand" or "Ethernet"
      items+=("{\"device\":$(json_str "$(basename -- "$dev")"),\"port\":$(json_num "$(basename -- "$port")"),\"state\":$(json_str_or_null "$state"),\"rate\":$(json_str_or_null "$rate"),\"linkLayer\":$(json_str_or_null "$ll"),\"netdevs\":[$(json_join "${netdevs[@]}")]}")
    done
  done
  printf '[%s]' "$(json_join "${items[@]}")"
}

# global addresses; pod-network interfaces (Calico, flannel, CNI bridges) are left out
addresses_json() {
  local iface fam cidr items=()
  command -v ip >/dev/null 2>&1 || {
    printf '[]'
    return 0
  }
  while read -r _ iface fam cidr _; do
    case "$iface" in vxlan.calico | tunl0 | cali* | flannel* | cni0 | vxlan-v6.calico) continue ;; esac
    [[ "$fam" == inet || "$fam" == inet6 ]] || continue
    items+=("{\"interface\":$(json_str "${iface%@*}"),\"family\":$(json_str "$fam"),\"address\":$(json_str "${cidr%/*}"),\"prefixLength\":$(json_num "${cidr#*/}")}")
  done < <(ip -o addr show scope global 2>/dev/null | sort -k2,2 -k3,3 -k4,4)
  printf '[%s]' "$(json_join "${items[@]}")"
}

# the source address the host would use on its default route (no packet is sent)
default_route_address() {
  command -v ip >/dev/null 2>&1 || return 0
  ip -o route get 1.0.0.0 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }' || true
}

microk8s_json() {
  local installed=0 running=0 clustered=0 role="" held=0 channel="" nodes status
  if mk8s_installed; then
    installed=1
    channel="$SNAP_TRACKING"
    [ "$channel" != "-" ] || channel=""
    [[ ",$SNAP_NOTES," != *,held,* ]] || held=1
    if mk8s_clustered_worker; then
      role=worker clustered=1
      ! snap_service_active microk8s.daemon-kubelite || running=1
    else
      role=control-plane
      status="$(mk8s_t 60 status 2>/dev/null || true)"
      if [[ "$status" == "microk8s is running"* ]]; then
        running=1
        nodes="$(mk8s_t 30 kubectl get nodes -o name 2>/dev/null | grep -c . || true)"
        [ "${nodes:-0}" -le 1 ] || clustered=1
      fi
    fi
  fi
  printf '{"installed":%s,"version":%s,"revision":%s,"channel":%s,"running":%s,"clustered":%s,"role":%s,"held":%s,"clusterId":%s}' \
    "$(json_bool "$installed")" "$(json_str_or_null "$SNAP_VERSION")" "$(json_str_or_null "$SNAP_REV")" \
    "$(json_str_or_null "$channel")" "$(json_bool "$running")" "$(json_bool "$clustered")" \
    "$(json_str_or_null "$role")" "$(json_bool "$held")" "$(json_str_or_null "$(marker_cluster_id)")"
}

main() {
  local cpus
  cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
  printf '{"hostname":%s,"os":{"id":%s,"version":%s},"kernel":%s,"arch":%s,"cpus":%s,"memoryBytes":%s,"disk":%s,"gpus":%s,"infiniband":%s,"addresses":%s,"defaultRouteAddress":%s,"microk8s":%s}\n' \
    "$(json_str "$(uname -n)")" "$(json_str_or_null "$(os_field ID)")" "$(json_str_or_null "$(os_field VERSION_ID)")" \
    "$(json_str "$(uname -r)")" "$(json_str "$(uname -m)")" "$(json_num "$cpus")" \
    "$(json_num "$(memory_bytes)")" "$(disk_json)" "$(gpus_json)" "$(infiniband_json)" \
    "$(addresses_json)" "$(json_str_or_null "$(default_route_address)")" "$(microk8s_json)"
  log "facts collected"
}

main "$@"
