"""reference-site: an ML2 mechanism driver that binds every port with no agent.

Neutron runs API-only on the reference site (no OVS, no L2 agent), so no real
mechanism driver can bind a port and Nova's boots would end in
`binding_failed`. This driver binds every port as VIF_TYPE_OVS and ACTIVE, so
Nova's fake virt driver boots servers on real Neutron ports. Installed into the
venv by scripts/reference-site together with a dist-info entry point
(neutron.ml2.mechanism_drivers: refsite_noop).
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class NoopBindMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: False,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
