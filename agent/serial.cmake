# The serial and printer bridge's files (serial_bridge.c is listed in
# CMakeLists.txt).
target_sources(redir-agent PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/serial_device.c
  ${CMAKE_CURRENT_LIST_DIR}/serial_net.c
  ${CMAKE_CURRENT_LIST_DIR}/serial_port.c
  ${CMAKE_CURRENT_LIST_DIR}/serial_rfc2217.c
  ${CMAKE_CURRENT_LIST_DIR}/serial_telnet.c
  ${CMAKE_CURRENT_LIST_DIR}/serial_tty.c
)
