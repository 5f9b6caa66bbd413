#!/bin/sh
# scripts/lib/boottest-guest.sh: the boot test's harness INSIDE the guest.
# scripts/boot-test hands it to the guest as a systemd credential (SMBIOS
# type 11, with the unit that runs it): nothing of it is in the image. It
# reports on the second serial port (ttyS1) as `BOOTTEST key=value` lines,
# then powers off (or reboots, after the in-place upgrade).
#
# Phases (credential boottest.phase):
#   first     BIOS, config drive with answers: first boot configured it; run
#             every enabled job once; appliance status --json
#   second    same disk: first boot did not run again; then the in-place
#             upgrade (appliance self-install from the disk labelled
#             BOOTTEST-UPG) and a reboot
#   upgraded  after the reboot: migrate ran this boot; every job once more;
#             appliance status --json
#   banner    UEFI, no user data: not configured, the wizard banner shown
set -u
out=/dev/ttyS1
say() { printf 'BOOTTEST %s\n' "$*" > "$out"; }
val() { systemctl show -p "$2" --value "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
phase=$(cat "$CREDENTIALS_DIRECTORY/boottest.phase")
say "phase=$phase begin uptime=$(cut -d' ' -f1 /proc/uptime)"
say "version=$(sed -n 's/^APPLIANCE_VERSION=//p' /etc/fedcloud-appliance/release)"
say "hostname=$(hostname)"
say "machine_id=$(cat /etc/machine-id)"
say "root_bytes=$(df -B1 --output=size / | tail -1 | tr -d ' ')"
say "ssh_host_key=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null | cut -d' ' -f2)"
say "authorized_keys=$(cat /home/*/.ssh/authorized_keys /root/.ssh/authorized_keys 2>/dev/null | grep -c boottest)"
say "cloud_init=$(cloud-init status 2>/dev/null | sed -n 's/^status: //p')"
say "firstboot_condition=$(val appliance-firstboot.service ConditionResult) firstboot_result=$(val appliance-firstboot.service Result)"
say "firstboot_ran_this_boot=$(journalctl -b -q -u appliance-firstboot.service -g 'Finished|Failed' -o cat 2>/dev/null | grep -c .)"
say "configured=$(test -e /var/lib/fedcloud-appliance/.configured && echo yes || echo no)"
say "migrate_active=$(val appliance-migrate.service ActiveState) migrate_result=$(val appliance-migrate.service Result) migrate_status=$(val appliance-migrate.service ExecMainStatus)"
say "migrate_ran_this_boot=$(journalctl -b -q -u appliance-migrate.service -g 'Finished' -o cat 2>/dev/null | grep -c .)"
say "timers_enabled=$(systemctl list-unit-files --no-legend --state=enabled 'appliance-*.timer' | cut -d' ' -f1 | tr '\n' ' ')"
say "timers_active=$(systemctl list-units --no-legend --state=active 'appliance-*.timer' | awk '{print $1}' | tr '\n' ' ')"
failed=$(systemctl list-units --no-legend --plain --state=failed | awk '{print $1}' | tr '\n' ' ')
say "failed_units=$failed"
journal() {  # the last lines of a unit's journal this boot, for the log
  journalctl -b -q -u "$1" -o short-monotonic --no-pager 2>/dev/null | tail -n "${2:-40}" | sed "s|^|BOOTTEST-JOURNAL $1: |" > "$out"
}
for u in $failed; do journal "$u"; done

run_jobs() {
  for job in images-sync accounting-extract accounting-send info-publish crl-refresh; do
    systemctl is-enabled -q "appliance-$job.timer" || continue
    systemctl start "appliance-$job.service"
    result=$(val appliance-$job.service Result)
    say "job=$job ran=$(val appliance-$job.service ConditionResult) result=$result exit=$(val appliance-$job.service ExecMainStatus)"
    [ "$result" = success ] || journal "appliance-$job.service"
  done
  rc=0; status=$(appliance status --json 2>/dev/null) || rc=$?
  say "status_exit=$rc"
  say "status_json=$(printf '%s' "$status" | tr -d '\n')"
}

case $phase in
  first|upgraded) run_jobs ;;
  second)
    mkdir -p /run/boottest-upg
    if mount -o ro /dev/disk/by-label/BOOTTEST-UPG /run/boottest-upg; then
      rc=0; report=$(/run/boottest-upg/appliance --json self-install 2>/run/boottest-upg.err) || rc=$?
      say "self_install_exit=$rc"
      say "self_install_json=$(printf '%s' "$report" | tr -d '\n')"
      [ $rc = 0 ] || say "self_install_err=$(tr '\n' ' ' < /run/boottest-upg.err)"
      say "migrate_after_self_install=$(val appliance-migrate.service ActiveState)"
      umount /run/boottest-upg
    else
      say "self_install_exit=no-upgrade-disk"
    fi
    say "phase=$phase end"
    systemctl reboot
    exit 0 ;;
  banner)
    say "issue=$(cat /etc/issue.d/* 2>/dev/null | tr '\n' ' ')" ;;
esac
say "phase=$phase end"
systemctl poweroff
