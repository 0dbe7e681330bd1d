# The dialog profile registry (src/dlg/profile.c): a library of its own so
# that it builds and is tested apart from the rest of the dialog engine.
add_library(imsdlg_profile STATIC ${CMAKE_CURRENT_LIST_DIR}/profile.c)
target_link_libraries(imsdlg_profile PUBLIC imsdlg_core pthread)
