"""The ``ardour7-lua`` script that builds a session's strips from a :class:`~grafx_ardour.plan.SessionPlan`.

The script runs Ardour headless (its "None (Dummy)" audio backend), creates
the session, its stereo tracks and buses, adds each strip's plug-ins before
the fader with their control values, sets faders, routes each strip's outputs to its bus, adds the aux
sends and saves. The audio regions and the panners are written into the saved session by
:mod:`grafx_ardour.sessionfile` (Ardour 7.3's Lua cannot import files, and
its headless tools create no panners).
"""

from __future__ import annotations

import json

from .plan import SessionPlan, Strip

__all__ = ["session_script"]

_HEADER = """\
AudioEngine:set_backend("None (Dummy)", "", "")
AudioEngine:start(false)
local s = create_session({folder}, {name}, {rate})
assert(s, "Ardour could not create the session in " .. {folder})
local G = PBD.GroupControlDisposition.NoGroup
local R = {{}}
local function plugins(route, list)
  for i, spec in ipairs(list) do
    local p = ARDOUR.LuaAPI.new_plugin(s, spec[1], ARDOUR.PluginType.LV2, "")
    assert(not p:isnil(), "LV2 plug-in " .. spec[1] .. " is not installed (apt-get install ardour-lv2-plugins)")
    for port, value in pairs(spec[2]) do
      assert(ARDOUR.LuaAPI.set_processor_param(p, port, value), "cannot set port " .. port .. " of " .. spec[1])
    end
    assert(route:add_processor_by_index(p, i - 1, nil, true) == 0, "cannot add " .. spec[1])
  end
end
local function fader(route, gain)
  route:gain_control():set_value(gain, G)
end
local function route_to(route, bus)
  route:output():disconnect_all(nil)
  for c = 0, 1 do
    assert(route:output():audio(c):connect(bus:input():audio(c):name()) == 0, "cannot connect " .. route:name())
  end
end
"""

_FOOTER = """\
s:save_state("", false, false, false, false, false)
close_session()
print("grafx-ardour: session saved")
"""


def _lua(value: object) -> str:
    return json.dumps(value)  # a JSON string or number is a Lua literal


def _plugin_table(strip: Strip) -> str:
    items = []
    for slot in strip.plugins:
        controls = ", ".join(f"[{port}] = {value!r}" for port, value in sorted(slot.controls.items()))
        items.append(f"{{{_lua(slot.uri)}, {{{controls}}}}}")
    return "{" + ", ".join(items) + "}"


def session_script(plan: SessionPlan, folder: str, name: str, sample_rate: int) -> str:
    """The Lua program that builds ``plan`` as session ``name`` in ``folder`` at ``sample_rate`` Hz."""
    lines = [_HEADER.format(folder=_lua(folder), name=_lua(name), rate=int(sample_rate))]
    for strip in plan.strips:
        key = _lua(strip.name)
        if strip.kind == "track":
            lines.append(f"R[{key}] = s:new_audio_track(2, 2, nil, 1, {key}, ARDOUR.PresentationInfo.max_order, "
                         "ARDOUR.TrackMode.Normal, true):front()")
        elif strip.kind == "bus":
            lines.append(f"R[{key}] = s:new_audio_route(2, 2, nil, 1, {key}, ARDOUR.PresentationInfo.Flag.AudioBus, "
                         "ARDOUR.PresentationInfo.max_order):front()")
        else:
            lines.append(f"R[{key}] = s:master_out()")
            continue
        lines.append(f"assert(R[{key}]:name() == {key}, 'Ardour renamed strip ' .. {key})")
    for strip in plan.strips:
        key = _lua(strip.name)
        lines.append(f"plugins(R[{key}], {_plugin_table(strip)})")
        lines.append(f"fader(R[{key}], {strip.gain!r})")
        if strip.kind == "track":
            lines.append(f"R[{key}]:input():disconnect_all(nil)")  # play the region, never a live input
        if strip.output is not None:
            # Explicitly, master included: Ardour connects new strips to the master asynchronously,
            # and a save can come first.
            lines.append(f"route_to(R[{key}], R[{_lua(strip.output)}])")
        for k, (bus, level) in enumerate(strip.sends):
            lines.append(f"s:add_internal_send(R[{_lua(bus)}], R[{key}]:main_outs(), R[{key}])")
            lines.append(f"R[{key}]:nth_send({k}):to_send():gain_control():set_value({level!r}, G)")
    lines.append(_FOOTER)
    return "\n".join(lines)
