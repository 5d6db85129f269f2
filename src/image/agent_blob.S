/* The static guest agent, embedded in the host binary so that host and
 * guest always speak the same protocol version (the kvmtool idiom). */
	.section .rodata
	.global vb_agent_blob
	.global vb_agent_blob_end
	.balign 16
vb_agent_blob:
	.incbin AGENT_PATH
vb_agent_blob_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
