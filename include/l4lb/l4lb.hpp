// The umbrella header: everything in l4lb. Include single headers to keep builds lean.
#pragma once

#include "l4lb/version.hpp"
#include "l4lb/expected.hpp"

// wire: addresses, flow keys, header views, the parser, checksums
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/checksum.hpp"
#include "l4lb/wire/crc32c.hpp"
#include "l4lb/wire/drop_reason.hpp"
#include "l4lb/wire/ethernet.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/gre.hpp"
#include "l4lb/wire/gue.hpp"
#include "l4lb/wire/hash.hpp"
#include "l4lb/wire/icmp.hpp"
#include "l4lb/wire/ipv4.hpp"
#include "l4lb/wire/ipv6.hpp"
#include "l4lb/wire/packet.hpp"
#include "l4lb/wire/parse.hpp"
#include "l4lb/wire/tcp.hpp"
#include "l4lb/wire/udp.hpp"
#include "l4lb/wire/vlan.hpp"

// sched: every IPVS scheduler plus swrr, ring and weighted Maglev; any_scheduler picks by name
#include "l4lb/sched/any_scheduler.hpp"
#include "l4lb/sched/real_server.hpp"
#include "l4lb/sched/scheduler.hpp"

// conn: connection tracking (IPVS state machine, timeouts, persistence, expiry, sharding)
#include "l4lb/conn/conn_table.hpp"
#include "l4lb/conn/huge_page_resource.hpp"
#include "l4lb/conn/packet_input.hpp"
#include "l4lb/conn/persistence.hpp"
#include "l4lb/conn/sctp_state.hpp"
#include "l4lb/conn/shard.hpp"
#include "l4lb/conn/tcp_state.hpp"
#include "l4lb/conn/timeouts.hpp"

// forward: DR, NAT, FullNAT and tunnel rewriters on the caller's buffer; decapsulation; IPv4
// fragmentation; the director's own ICMP answers (MTU, port unreachable, echo reply)
#include "l4lb/forward/decap.hpp"
#include "l4lb/forward/dr.hpp"
#include "l4lb/forward/forward_error.hpp"
#include "l4lb/forward/fragment.hpp"
#include "l4lb/forward/frame_buffer.hpp"
#include "l4lb/forward/full_nat.hpp"
#include "l4lb/forward/icmp_reply.hpp"
#include "l4lb/forward/icmp_too_big.hpp"
#include "l4lb/forward/ip_id.hpp"
#include "l4lb/forward/nat.hpp"
#include "l4lb/forward/record_route.hpp"
#include "l4lb/forward/tunnel.hpp"

// director: services and real servers, the packet pipeline, stats, explain
#include "l4lb/director/configuration.hpp"
#include "l4lb/director/control.hpp"
#include "l4lb/director/director.hpp"
#include "l4lb/director/explain.hpp"
#include "l4lb/director/model.hpp"
#include "l4lb/director/neighbour_table.hpp"
#include "l4lb/director/snapshot.hpp"
#include "l4lb/director/stats.hpp"
#include "l4lb/director/verdict.hpp"

// io: pcap files in memory
#include "l4lb/io/pcap_file.hpp"

// config: ipvsadm's grammar, rules files (-R, -S) and listings (-L), byte for byte
#include "l4lb/config/error.hpp"
#include "l4lb/config/grammar.hpp"
#include "l4lb/config/listing.hpp"
#include "l4lb/config/rules.hpp"
