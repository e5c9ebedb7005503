# Oracle test (label "oracle"): tools/poplar-mbox against Python's mailbox module on generated
# mboxrd files; see mbox_oracle_test.py. Included from tests/unit/CMakeLists.txt.
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(WARNING "python3 not found: mbox_oracle_test is not registered")
elseif(TARGET poplar-mbox)
  add_test(NAME mbox_oracle_test
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/mbox_oracle_test.py
                   $<TARGET_FILE:poplar-mbox>)
  set_tests_properties(mbox_oracle_test PROPERTIES LABELS oracle TIMEOUT 300)
endif()

# Qpopper UIDL oracle (label "oracle"): poplar-mbox --uidl=qpopper against an independent Python
# implementation written from the rules, on generated mailboxes; see qpopper_uidl_oracle_test.py.
if(Python3_Interpreter_FOUND AND TARGET poplar-mbox)
  add_test(NAME qpopper_uidl_oracle_test
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/qpopper_uidl_oracle_test.py
                   $<TARGET_FILE:poplar-mbox>)
  set_tests_properties(qpopper_uidl_oracle_test PROPERTIES LABELS oracle TIMEOUT 300)
endif()
