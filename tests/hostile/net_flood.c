/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net_flood — run as root in a guest with --network (tests/integration/
 * test_network.sh): floods eth0 with malformed and hostile IPv4 packets
 * through a raw socket (IP_HDRINCL: the guest kernel only fills the total
 * length, id and header checksum): fragments, random protocols, TCP with
 * bogus data offsets and every flag combination, UDP lengths that lie,
 * destinations everywhere (metadata, the host's loopback, private ranges).
 * The guest kernel has no AF_PACKET, so this is as raw as a guest program
 * gets.  Prints how many packets went out.  Without "syn", no TCP packet
 * carries SYN (the VM's own connection caps stay free); with it, some do.
 *
 *   net_flood SECONDS [syn]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static const uint32_t dsts[] = {
	0xa9fea9feu, /* 169.254.169.254 */
	0x0a000202u, /* 10.0.2.2 */
	0x0a000203u, /* 10.0.2.3 */
	0x0a0002ffu, /* 10.0.2.255 */
	0x0a010203u, /* 10.1.2.3 */
	0xc0a80101u, /* 192.168.1.1 */
	0x646464c8u, /* 100.100.100.200 */
	0x5db8d822u, /* 93.184.216.34 */
	0xe0000001u, /* 224.0.0.1 */
};

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 3;
	int syn = argc > 2 && strcmp(argv[2], "syn") == 0;
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (s < 0) {
		perror("socket(SOCK_RAW)");
		return 1;
	}
	uint8_t pkt[1500];
	time_t end = time(NULL) + secs;
	unsigned long sent = 0, tries = 0;
	while (time(NULL) < end) {
		for (int burst = 0; burst < 64; burst++, tries++) {
			size_t len = 20 + rnd() % 200;
			for (size_t i = 0; i < len; i++)
				pkt[i] = (uint8_t)rnd();
			pkt[0] = 0x45;
			pkt[1] = 0;
			uint32_t dst = dsts[rnd() % (sizeof(dsts) / sizeof(dsts[0]))];
			if (rnd() % 4 == 0)
				dst = rnd();
			if ((dst >> 24) == 127 || (dst >> 24) == 0)
				dst = dsts[0];
			uint32_t be = htonl(dst);
			memcpy(pkt + 16, &be, 4);
			memset(pkt + 12, 0, 4); /* the kernel fills our address */
			static const uint8_t protos[] = { 6, 17, 1, 47, 6, 6, 17 };
			pkt[9] = protos[rnd() % sizeof(protos)];
			pkt[8] = 64;
			/* fragments a third of the time: MF and/or an offset */
			uint16_t frag = rnd() % 3 == 0 ? (uint16_t)(rnd() & 0x3fff) : 0x4000;
			pkt[6] = (uint8_t)(frag >> 8);
			pkt[7] = (uint8_t)frag;
			if (pkt[9] == 6 && len >= 40 && syn && rnd() % 2)
				pkt[20 + 13] = 0x02; /* a SYN now and then, to reach the caps */
			else if (pkt[9] == 6 && len >= 40 && !syn)
				pkt[20 + 13] &= (uint8_t)~0x02;
			struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = be };
			if (sendto(s, pkt, len, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)len)
				sent++;
		}
	}
	printf("sent %lu of %lu\n", sent, tries);
	return 0;
}
