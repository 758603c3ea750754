"""`fedavg`: McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
Decentralized Data". Every parameter trains and moves; the server takes the sample-weighted mean.
"""

from baselines.base import Method, register


@register("fedavg")
class FedAvg(Method):
    pass
