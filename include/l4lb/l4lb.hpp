// The umbrella header: everything in l4lb. Include single headers to keep builds lean.
#pragma once

#include "l4lb/version.hpp"
#include "l4lb/expected.hpp"
#include "l4lb/wire/address.hpp"
#include "l4lb/wire/flow_key.hpp"
#include "l4lb/wire/hash.hpp"
#include "l4lb/io/pcap_file.hpp"
